#include "reports/process_dump.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>

#include "reports/collapsed.hpp"
#include "reports/json_report.hpp"
#include "reports/text.hpp"

namespace loopspy {
namespace {

using Json = nlohmann::ordered_json;

std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

void appendf(std::string& out, const char* fmt, auto... args) {
    char small[512];
    int n = std::snprintf(small, sizeof small, fmt, args...);
    if (n < 0) return;
    if (static_cast<std::size_t>(n) < sizeof small) {
        out.append(small, static_cast<std::size_t>(n));
        return;
    }
    std::string big(static_cast<std::size_t>(n) + 1, '\0');
    std::snprintf(big.data(), big.size(), fmt, args...);
    out.append(big.data(), static_cast<std::size_t>(n));
}

Json frames_json(const std::vector<DumpFrame>& frames) {
    Json a = Json::array();
    for (const DumpFrame& f : frames) {
        Json j;
        j["name"] = sanitize_utf8(f.name);
        j["file"] = sanitize_utf8(f.file);
        j["line"] = f.line;
        j["coroutine"] = f.coroutine;
        a.push_back(std::move(j));
    }
    return a;
}

const DumpTask* task_on(const ProcessDump& d, const DumpThread& th) {
    for (const DumpTask& t : d.tasks) {
        if (t.thread && *t.thread == th.tid) return &t;
    }
    return nullptr;
}

class TreePrinter {
public:
    explicit TreePrinter(const std::vector<DumpTask>& tasks) : tasks_(tasks) {
        for (std::size_t i = 0; i < tasks.size(); ++i) index_[tasks[i].addr] = i;
        for (std::size_t i = 0; i < tasks.size(); ++i) {
            for (std::uint64_t a : tasks[i].awaited_by) {
                if (auto it = index_.find(a); it != index_.end()) children_[it->second].push_back(i);
            }
        }
    }

    void print(std::string& out) {
        for (std::size_t i = 0; i < tasks_.size(); ++i) {
            bool has_parent = false;
            for (std::uint64_t a : tasks_[i].awaited_by) has_parent = has_parent || index_.count(a);
            if (!has_parent) task(out, i, "", true, {});
        }
        // Tasks in an await cycle have no root; show them once too.
        for (std::size_t i = 0; i < tasks_.size(); ++i) {
            if (!printed_.count(i)) task(out, i, "", true, {});
        }
    }

private:
    void line(std::string& out, const std::string& prefix, bool last, const std::string& text) {
        out += prefix;
        out += last ? "└── " : "├── ";
        out += sanitize_utf8(text);
        out += '\n';
    }

    void task(std::string& out, std::size_t i, std::string prefix, bool last, std::set<std::size_t> path) {
        const DumpTask& t = tasks_[i];
        printed_.insert(i);
        std::string label = "(T) " + t.name + " [" + t.state;
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

    const std::vector<DumpTask>& tasks_;
    std::unordered_map<std::uint64_t, std::size_t> index_;
    std::map<std::size_t, std::vector<std::size_t>> children_;
    std::set<std::size_t> printed_;
};

}  // namespace

std::string DumpFrame::text() const {
    return file.empty() ? name : name + " (" + file + ":" + std::to_string(line) + ")";
}

std::string render_dump_text(const ProcessDump& d) {
    std::string out;
    appendf(out, "Process %d: %s\nPython %s (%s)\n", d.pid.value, sanitize_utf8(d.command).c_str(),
            d.python.text().c_str(), sanitize_utf8(d.python_binary).c_str());
    for (const DumpThread& t : d.threads) {
        const DumpTask* running = task_on(d, t);
        appendf(out, "\nThread %d \"%s\"%s%s\n", t.tid.value, sanitize_utf8(t.name).c_str(),
                running ? " running task " : (t.frames.empty() ? " (idle: no Python frames)" : ""),
                running ? sanitize_utf8(running->name).c_str() : "");
        for (const DumpFrame& f : t.frames) appendf(out, "    %s\n", sanitize_utf8(f.text()).c_str());
        if (t.truncated) out += "    <truncated>\n";
    }
    appendf(out, "\nTasks: %zu\n", d.tasks.size());
    TreePrinter(d.tasks).print(out);
    return out;
}

std::string render_dump_json(const ProcessDump& d) {
    Json j;
    j["pid"] = d.pid.value;
    j["command"] = sanitize_utf8(d.command);
    j["python"] = d.python.text();
    j["python_binary"] = sanitize_utf8(d.python_binary);
    Json th = Json::array();
    for (const DumpThread& t : d.threads) {
        Json x;
        x["tid"] = t.tid.value;
        x["name"] = sanitize_utf8(t.name);
        const DumpTask* running = task_on(d, t);
        x["task"] = running ? Json(sanitize_utf8(running->name)) : Json(nullptr);
        x["truncated"] = t.truncated;
        x["frames"] = frames_json(t.frames);
        th.push_back(std::move(x));
    }
    j["threads"] = std::move(th);
    Json ta = Json::array();
    for (const DumpTask& t : d.tasks) {
        Json x;
        x["id"] = hex(t.addr);
        x["name"] = sanitize_utf8(t.name);
        x["state"] = t.state;
        x["thread"] = t.thread ? Json(t.thread->value) : Json(nullptr);
        x["coroutine_stack"] = frames_json(t.stack);
        x["awaiting"] = t.awaiting.empty() ? Json(nullptr) : Json(t.awaiting);
        Json by = Json::array();
        for (std::uint64_t a : t.awaited_by) by.push_back(hex(a));
        x["awaited_by"] = std::move(by);
        ta.push_back(std::move(x));
    }
    j["tasks"] = std::move(ta);
    return j.dump(2) + "\n";
}

}  // namespace loopspy
