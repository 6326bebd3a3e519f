// Reads one instant of a live Python process for `loopspy dump`: every thread's stack and every
// asyncio task with its state and await chain, named. By default the process's threads are held
// still (ptrace) for the milliseconds this takes, so stacks and tasks agree.
#pragma once

#include "core/result.hpp"
#include "reports/process_dump.hpp"

namespace loopspy {

struct DumpOptions {
    bool nonblocking = false;  // read the process while it runs
};

Result<ProcessDump> take_dump_snapshot(Pid pid, const DumpOptions& options);

}  // namespace loopspy
