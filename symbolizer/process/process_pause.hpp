// Holds every thread of a process still for a moment (PTRACE_SEIZE + PTRACE_INTERRUPT), so that
// reading its stacks and tasks sees one instant. Let go on destruction; if loopspy dies first,
// the kernel detaches and the threads run on. Used by `loopspy dump` only: recording never stops
// the target.
#pragma once

#include <vector>

#include "core/result.hpp"
#include "core/types.hpp"

namespace loopspy {

class ProcessPause {
public:
    /// Stops every thread of `pid`. NoPrivilege when ptrace is refused, NoSuchProcess when it is gone.
    static Result<ProcessPause> pause(Pid pid);
    ProcessPause(ProcessPause&& other) noexcept : tids_(std::move(other.tids_)) { other.tids_.clear(); }
    ProcessPause& operator=(ProcessPause&&) = delete;
    ~ProcessPause();

private:
    ProcessPause() = default;
    std::vector<Tid> tids_;  // seized threads
};

}  // namespace loopspy
