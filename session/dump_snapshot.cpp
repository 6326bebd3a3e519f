#include "session/dump_snapshot.hpp"

#include <optional>

#include "session/frame_naming.hpp"
#include "symbolizer/asyncio/asyncio_tasks.hpp"
#include "symbolizer/frames/code_symbolizer.hpp"
#include "symbolizer/asyncio/coroutine_chain.hpp"
#include "symbolizer/cpython/interpreter.hpp"
#include "symbolizer/process/proc_maps.hpp"
#include "symbolizer/process/process_pause.hpp"
#include "symbolizer/frames/stack_resolver.hpp"
#include "symbolizer/frames/thread_stacks.hpp"
#include "symbolizer/cpython/thread_names.hpp"
#include "symbolizer/cpython/thread_states.hpp"

namespace loopspy {
namespace {

std::vector<DumpFrame> name_frames(StackResolver& resolver, std::span<const loopspy_frame> raw) {
    std::vector<ResolvedFrame> resolved;
    resolver.resolve(raw, resolved);
    std::vector<DumpFrame> out;
    for (const ResolvedFrame& f : resolved) {
        const FrameName n = name_of(f);
        out.push_back({std::string(n.name), std::string(n.file), n.line, (n.flags & kFrameCoroutine) != 0});
    }
    return out;
}

const char* activity_name(TaskActivity a) {
    switch (a) {
        case TaskActivity::Done: return "done";
        case TaskActivity::Running: return "running";
        case TaskActivity::Created: return "created";
        case TaskActivity::Suspended: return "suspended";
    }
    return "suspended";
}

}  // namespace

Result<ProcessDump> take_dump_snapshot(Pid pid, const DumpOptions& options) {
    LOOPSPY_TRY(TargetProcess target, target_process(pid));
    pid = target.pid;  // a thread id dumps its whole process
    RemoteMemory memory(pid);
    LOOPSPY_TRY(Interpreter interp, find_interpreter(pid, memory));
    // One instant for every thread and task, unless asked to read the process running.
    std::optional<ProcessPause> paused;
    if (!options.nonblocking) {
        LOOPSPY_TRY(ProcessPause p, ProcessPause::pause(pid));
        paused.emplace(std::move(p));
    }
    CodeSymbolizer symbolizer(memory, interp);
    StackResolver resolver(symbolizer, interp.layout);

    ProcessDump dump;
    dump.pid = pid;
    dump.python = interp.version;
    dump.python_binary = interp.binary_path;
    LOOPSPY_TRY(std::vector<ThreadState> states, read_thread_states(memory, interp));
    const std::unordered_map<Tid, std::string> given = read_threading_names(memory, interp);
    for (const ThreadState& ts : states) {
        RawThreadStack raw = read_thread_stack(memory, interp.layout, ts.tstate);
        DumpThread t;
        t.tid = ts.tid;
        auto named = given.find(ts.own_tid);
        t.name = named != given.end() ? named->second : thread_name(pid, ts.tid);
        t.frames = name_frames(resolver, raw.frames);
        t.truncated = raw.truncated;
        if (raw.coro.value) t.coro = raw.coro.value;
        dump.threads.push_back(std::move(t));
    }

    if (auto reader = make_task_reader(memory, interp)) {
        LOOPSPY_TRY(std::vector<RawTask> raw_tasks, reader->read_tasks());
        TypeNames types(memory, interp.layout);
        for (const RawTask& r : raw_tasks) {
            DumpTask t;
            t.addr = r.addr.value;
            t.name = r.name;
            for (RemoteAddr a : r.awaited_by) t.awaited_by.push_back(a.value);
            std::optional<CoroutineChain> chain;
            if (!r.done && r.coro.value != 0) chain = read_coroutine_chain(memory, interp.layout, types, r.coro);
            const TaskActivity activity = task_activity(r, chain ? &*chain : nullptr);
            t.state = activity_name(activity);
            if (chain) {
                t.stack = name_frames(resolver, chain->frames);
                t.awaiting = chain->awaiting;
            }
            for (const DumpThread& th : dump.threads) {
                if (th.coro != 0 && th.coro == r.coro.value) t.thread = th.tid;
            }
            dump.tasks.push_back(std::move(t));
        }
    }
    paused.reset();  // everything is read: let it run
    dump.command = process_cmdline(pid);
    return dump;
}

}  // namespace loopspy
