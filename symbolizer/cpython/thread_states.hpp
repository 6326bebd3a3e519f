// Walks _PyRuntime -> interpreters -> thread states, so the kernel side can be told which
// PyThreadState belongs to which native thread.
#pragma once

#include <vector>

#include "core/result.hpp"
#include "core/types.hpp"
#include "symbolizer/cpython/interpreter.hpp"
#include "symbolizer/process/remote_memory.hpp"

namespace loopspy {

struct ThreadState {
    Tid tid;            // as loopspy (and /proc, and the kernel side) sees it: native_thread_id,
                        // translated when the target runs in a PID namespace of its own
    Tid own_tid;        // native_thread_id as the target sees it
    RemoteAddr tstate;  // the PyThreadState
    std::uint64_t interpreter_id = 0;
};

/// Every thread state of every interpreter. Bounded (64 interpreters, 65536 threads) and
/// cycle-safe; a read failure in the middle ends that list early rather than failing.
Result<std::vector<ThreadState>> read_thread_states(const RemoteMemory& memory, const Interpreter& interp);

/// Where each GIL of the process is (struct _gil_runtime_state, layout.gil_size bytes): the
/// runtime's one in 3.11; from 3.12 each interpreter's ceval.gil, distinct ones once. Empty when
/// they cannot be read.
std::vector<RemoteAddr> read_gils(const RemoteMemory& memory, const Interpreter& interp);

}  // namespace loopspy
