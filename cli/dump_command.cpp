#include "cli/dump_command.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <unordered_map>

#include "cli/preflight.hpp"
#include "reports/collapsed.hpp"
#include "reports/json_report.hpp"
#include "symbolizer/asyncio_tasks.hpp"
#include "symbolizer/code_symbolizer.hpp"
#include "symbolizer/coroutine_chain.hpp"
#include "symbolizer/interpreter.hpp"
#include "symbolizer/proc_maps.hpp"
#include "symbolizer/process_pause.hpp"
#include "symbolizer/stack_resolver.hpp"
#include "symbolizer/thread_stacks.hpp"
#include "symbolizer/thread_states.hpp"

namespace loopspy {
namespace {

using Json = nlohmann::ordered_json;

struct NamedFrame {
    std::string name, file;
    int line = 0;
    bool coroutine = false;
    std::string text() const {
        return file.empty() ? name : name + " (" + file + ":" + std::to_string(line) + ")";
    }
};

struct ThreadDump {
    Tid tid;
    std::string name;
    std::vector<NamedFrame> frames;  // innermost first
    std::uint64_t coro = 0;          // the coroutine its outermost coroutine frame belongs to
    bool truncated = false;
};

struct TaskDump {
    RawTask raw;
    std::string state;              // "running", "suspended", "done", "created"
    std::vector<NamedFrame> stack;  // the await chain, innermost first
    std::string awaiting;
    std::optional<Tid> thread;      // the thread running it
};

std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

std::vector<NamedFrame> name_frames(StackResolver& resolver, std::span<const loopspy_frame> raw) {
    std::vector<ResolvedFrame> resolved;
    resolver.resolve(raw, resolved);
    std::vector<NamedFrame> out;
    for (const ResolvedFrame& f : resolved) {
        if (!f.code) {
            out.push_back({"<unknown>", "", 0, false});
            continue;
        }
        out.push_back({f.code->qualname, f.code->filename, f.line, f.coroutine()});
    }
    return out;
}

Json frames_json(const std::vector<NamedFrame>& frames) {
    Json a = Json::array();
    for (const NamedFrame& f : frames) {
        Json j;
        j["name"] = sanitize_utf8(f.name);
        j["file"] = sanitize_utf8(f.file);
        j["line"] = f.line;
        j["coroutine"] = f.coroutine;
        a.push_back(std::move(j));
    }
    return a;
}

class TreePrinter {
public:
    TreePrinter(const std::vector<TaskDump>& tasks) : tasks_(tasks) {
        for (std::size_t i = 0; i < tasks.size(); ++i) index_[tasks[i].raw.addr.value] = i;
        for (std::size_t i = 0; i < tasks.size(); ++i) {
            for (RemoteAddr a : tasks[i].raw.awaited_by) {
                if (auto it = index_.find(a.value); it != index_.end()) children_[it->second].push_back(i);
            }
        }
    }

    void print(std::FILE* out) {
        for (std::size_t i = 0; i < tasks_.size(); ++i) {
            bool has_parent = false;
            for (RemoteAddr a : tasks_[i].raw.awaited_by) has_parent = has_parent || index_.count(a.value);
            if (!has_parent) task(out, i, "", true, {});
        }
        // Tasks in an await cycle have no root; show them once too.
        for (std::size_t i = 0; i < tasks_.size(); ++i) {
            if (!printed_.count(i)) task(out, i, "", true, {});
        }
    }

private:
    void line(std::FILE* out, const std::string& prefix, bool last, const std::string& text) {
        std::fprintf(out, "%s%s%s\n", prefix.c_str(), last ? "└── " : "├── ", sanitize_utf8(text).c_str());
    }

    void task(std::FILE* out, std::size_t i, std::string prefix, bool last, std::set<std::size_t> path) {
        const TaskDump& t = tasks_[i];
        printed_.insert(i);
        std::string label = "(T) " + t.raw.name + " [" + t.state;
        if (t.thread) label += " on thread " + std::to_string(t.thread->value);
        label += "]";
        if (path.count(i)) {
            line(out, prefix, last, label + " (await cycle)");
            return;
        }
        line(out, prefix, last, label);
        path.insert(i);
        prefix += last ? "    " : "│   ";
        // The await chain, outermost first, each frame nested in the one before.
        const auto& kids = children_[i];
        for (auto f = t.stack.rbegin(); f != t.stack.rend(); ++f) {
            line(out, prefix, true, f->text());
            prefix += "    ";
        }
        for (std::size_t k = 0; k < kids.size(); ++k) task(out, kids[k], prefix, k + 1 == kids.size(), path);
    }

    const std::vector<TaskDump>& tasks_;
    std::unordered_map<std::uint64_t, std::size_t> index_;
    std::map<std::size_t, std::vector<std::size_t>> children_;
    std::set<std::size_t> printed_;
};

}  // namespace

Result<int> run_dump(const DumpArgs& args) {
    if (args.pid <= 0) return make_error(ErrorKind::BadInput, "give the process to dump with -p PID");
    Pid pid{args.pid};
    if (!process_exists(pid)) return make_error(ErrorKind::NoSuchProcess, "no process with pid " + std::to_string(args.pid));
    RemoteMemory memory(pid);
    LOOPSPY_TRY(Interpreter interp, find_interpreter(pid, memory));
    // One instant for every thread and task, unless asked to read the process running.
    std::optional<ProcessPause> paused;
    if (!args.nonblocking) {
        LOOPSPY_TRY(ProcessPause p, ProcessPause::pause(pid));
        paused.emplace(std::move(p));
    }
    CodeSymbolizer symbolizer(memory, interp);
    StackResolver resolver(symbolizer, interp.layout);

    LOOPSPY_TRY(std::vector<ThreadState> states, read_thread_states(memory, interp));
    std::vector<ThreadDump> threads;
    for (const ThreadState& ts : states) {
        RawThreadStack raw = read_thread_stack(memory, interp.layout, ts.tstate);
        ThreadDump t;
        t.tid = ts.tid;
        t.name = thread_name(pid, ts.tid);
        t.frames = name_frames(resolver, raw.frames);
        t.truncated = raw.truncated;
        if (raw.coro_frame.value) t.coro = raw.coro_frame.value - interp.layout.gen_iframe;
        threads.push_back(std::move(t));
    }

    std::vector<TaskDump> tasks;
    if (auto reader = make_task_reader(memory, interp)) {
        LOOPSPY_TRY(std::vector<RawTask> raw_tasks, reader->read_tasks());
        TypeNames types(memory, interp.layout);
        for (RawTask& r : raw_tasks) {
            TaskDump t;
            t.raw = std::move(r);
            if (t.raw.done || t.raw.coro.value == 0) {
                t.state = "done";
            } else {
                CoroutineChain chain = read_coroutine_chain(memory, interp.layout, types, t.raw.coro);
                t.state = chain.state == CoroutineState::Executing ? "running"
                          : chain.state == CoroutineState::Created ? "created"
                                                                   : "suspended";
                t.stack = name_frames(resolver, chain.frames);
                t.awaiting = chain.awaiting;
            }
            for (const ThreadDump& th : threads) {
                if (th.coro != 0 && th.coro == t.raw.coro.value) t.thread = th.tid;
            }
            tasks.push_back(std::move(t));
        }
    }
    auto task_on = [&](const ThreadDump& th) -> const TaskDump* {
        for (const TaskDump& t : tasks) {
            if (t.thread && *t.thread == th.tid) return &t;
        }
        return nullptr;
    };

    paused.reset();  // everything is read: let it run while we print
    if (args.json) {
        Json j;
        j["pid"] = pid.value;
        j["command"] = sanitize_utf8(process_cmdline(pid));
        j["python"] = python_version_string(interp.version);
        j["python_binary"] = sanitize_utf8(interp.binary_path);
        Json th = Json::array();
        for (const ThreadDump& t : threads) {
            Json x;
            x["tid"] = t.tid.value;
            x["name"] = sanitize_utf8(t.name);
            const TaskDump* running = task_on(t);
            x["task"] = running ? Json(sanitize_utf8(running->raw.name)) : Json(nullptr);
            x["truncated"] = t.truncated;
            x["frames"] = frames_json(t.frames);
            th.push_back(std::move(x));
        }
        j["threads"] = std::move(th);
        Json ta = Json::array();
        for (const TaskDump& t : tasks) {
            Json x;
            x["id"] = hex(t.raw.addr.value);
            x["name"] = sanitize_utf8(t.raw.name);
            x["state"] = t.state;
            x["thread"] = t.thread ? Json(t.thread->value) : Json(nullptr);
            x["coroutine_stack"] = frames_json(t.stack);
            x["awaiting"] = t.awaiting.empty() ? Json(nullptr) : Json(t.awaiting);
            Json by = Json::array();
            for (RemoteAddr a : t.raw.awaited_by) by.push_back(hex(a.value));
            x["awaited_by"] = std::move(by);
            ta.push_back(std::move(x));
        }
        j["tasks"] = std::move(ta);
        std::string text = j.dump(2);
        std::fprintf(stdout, "%s\n", text.c_str());
        return 0;
    }

    std::fprintf(stdout, "Process %d: %s\nPython %s (%s)\n", pid.value, sanitize_utf8(process_cmdline(pid)).c_str(),
                 python_version_string(interp.version).c_str(), sanitize_utf8(interp.binary_path).c_str());
    for (const ThreadDump& t : threads) {
        const TaskDump* running = task_on(t);
        std::fprintf(stdout, "\nThread %d \"%s\"%s%s\n", t.tid.value, sanitize_utf8(t.name).c_str(),
                     running ? " running task " : (t.frames.empty() ? " (idle: no Python frames)" : ""),
                     running ? sanitize_utf8(running->raw.name).c_str() : "");
        for (const NamedFrame& f : t.frames) std::fprintf(stdout, "    %s\n", sanitize_utf8(f.text()).c_str());
        if (t.truncated) std::fprintf(stdout, "    <truncated>\n");
    }
    paused.reset();
    std::fprintf(stdout, "\nTasks: %zu\n", tasks.size());
    TreePrinter(tasks).print(stdout);
    return 0;
}

}  // namespace loopspy
