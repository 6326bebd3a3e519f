// `loopspy dump -p PID`: prints, once, every thread's Python stack and the asyncio task tree
// (each task's state and await chain), like py-spy dump plus `python -m asyncio pstree`.
#pragma once

#include "core/result.hpp"

namespace loopspy {

struct DumpArgs {
    int pid = 0;
    bool json = false;
    bool nonblocking = false;  // read the process while it runs (no ptrace pause)
    bool subprocesses = false; // -s: every descendant that runs Python too
};

Result<int> run_dump(const DumpArgs& args);

}  // namespace loopspy
