// A thread's Python stack read from user space (for `loopspy dump`): the same raw frames the
// kernel side walks (code object, instruction offset, owner), innermost first.
#pragma once

#include <vector>

#include "bpf/loopspy.h"
#include "core/types.hpp"
#include "symbolizer/cpython/layout.hpp"
#include "symbolizer/process/remote_memory.hpp"

namespace loopspy {

struct RawThreadStack {
    std::vector<loopspy_frame> frames;  // innermost first
    RemoteAddr coro;                    // the outermost generator-owned frame's coroutine, 0 if none
    bool truncated = false;             // more than max_frames
    bool read_error = false;            // a frame could not be read
};

/// Walks the frame chain of the thread whose PyThreadState is at `tstate`. The thread runs on,
/// so the result is a best effort: a chain that changes under the walk ends it early.
RawThreadStack read_thread_stack(const RemoteMemory& memory, const PythonLayout& layout, RemoteAddr tstate,
                                 std::size_t max_frames = LOOPSPY_MAX_FRAMES);

}  // namespace loopspy
