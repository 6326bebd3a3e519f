// One instant of a live process, as `loopspy dump` shows it: every thread's Python stack and the
// asyncio task tree. session/dump_snapshot.cpp reads it; text_tables and json_report render it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/types.hpp"

namespace loopspy {

struct DumpFrame {
    std::string name, file;
    int line = 0;
    bool coroutine = false;
    /// "name (file:line)", or the name alone for a frame with no file (<unknown>).
    std::string text() const { return file.empty() ? name : name + " (" + file + ":" + std::to_string(line) + ")"; }
};

struct DumpThread {
    Tid tid;
    std::string name;
    std::vector<DumpFrame> frames;  // innermost first
    std::uint64_t coro = 0;         // the coroutine its outermost coroutine frame belongs to
    bool truncated = false;
};

struct DumpTask {
    std::uint64_t addr = 0;
    std::string name;
    std::string state;                     // "running", "suspended", "done", "created"
    std::vector<DumpFrame> stack;          // the await chain, innermost first
    std::string awaiting;                  // the innermost awaited object's type, if not a coroutine
    std::optional<Tid> thread;             // the thread running it
    std::vector<std::uint64_t> awaited_by; // the tasks awaiting it, by address
};

struct ProcessDump {
    Pid pid;
    std::string command;
    PythonVersion python;
    std::string python_binary;
    std::vector<DumpThread> threads;
    std::vector<DumpTask> tasks;

    /// The task the thread was running, if any.
    const DumpTask* task_running_on(Tid tid) const {
        for (const DumpTask& t : tasks) {
            if (t.thread && *t.thread == tid) return &t;
        }
        return nullptr;
    }
};

}  // namespace loopspy
