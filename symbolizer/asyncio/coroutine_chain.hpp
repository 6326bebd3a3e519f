// The await chain of a suspended coroutine, read out of the target: the coroutine's own frame,
// the coroutine it awaits, the one that awaits, ... down to the object at the bottom (a Future,
// a Task, a sleep's timer future). In 3.11+ a coroutine's frame lives inside the coroutine
// object; before, the coroutine points at a PyFrameObject (gi_frame). Either way a coroutine
// suspended in `await` keeps the awaited object on top of its value stack: that is the link
// followed here.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "bpf/loopspy.h"
#include "core/types.hpp"
#include "symbolizer/cpython/layout.hpp"
#include "symbolizer/cpython/type_names.hpp"
#include "symbolizer/process/remote_memory.hpp"

namespace loopspy {

enum class CoroutineState { Unknown, Created, Suspended, Executing, Finished };

struct CoroutineChain {
    CoroutineState state = CoroutineState::Unknown;  // of the outermost coroutine
    /// The suspended frames, innermost first (as the kernel reports stacks), owner = generator.
    std::vector<loopspy_frame> frames;
    /// What the innermost coroutine awaits when it is not another coroutine: its type name
    /// ("_asyncio.Future", "_GatheringFuture", "_asyncio.Task", ...), or "" when none.
    std::string awaiting;
    RemoteAddr awaited;  // that object (for a Task: the awaited task), 0 when none
};

/// Reads the chain that starts at the coroutine (or generator) object `coro`. At most
/// `max_depth` coroutines are followed. A coroutine that is executing contributes no frames here:
/// its frames are on its thread's stack. The target runs on while the chain is read: a chain
/// whose outer coroutine was suspended and an inner one not (the task resumed meanwhile) reads as
/// Executing, with no frames.
CoroutineChain read_coroutine_chain(const RemoteMemory& memory, const PythonLayout& layout, TypeNames& types,
                                    RemoteAddr coro, int max_depth = 256);

/// Whether `type_name` is a coroutine-like object (with a frame of its own).
bool is_generator_type(const std::string& type_name);

}  // namespace loopspy
