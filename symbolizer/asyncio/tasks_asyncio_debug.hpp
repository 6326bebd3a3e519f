// Tasks found through the .AsyncioDebug offsets (CPython 3.14 and later: TaskSource::AsyncioDebug),
// which describe them for out-of-process tools: the `_asyncio`
// module (an extension module, or built into the interpreter) carries a section AsyncioDebug
// with the offsets of a Task's name, coroutine, awaited_by set and list node, and of the task
// lists kept per thread state and per interpreter.
#pragma once

#include <memory>

#include "symbolizer/asyncio/asyncio_tasks.hpp"

namespace loopspy {

/// Offsets from the AsyncioDebug section (all from the start of their struct).
struct AsyncioDebugOffsets {
    std::uint64_t task_size = 0, task_name = 0, task_awaited_by = 0, task_is_task = 0,
                  task_awaited_by_is_set = 0, task_coro = 0, task_node = 0;
    std::uint64_t interp_size = 0, interp_tasks_head = 0;
    std::uint64_t thread_size = 0, thread_running_loop = 0, thread_running_task = 0, thread_tasks_head = 0;
};

/// Parses the 13 uint64 fields of an AsyncioDebug section, checking that each offset lies inside
/// the struct it belongs to. BadInput for anything else.
Result<AsyncioDebugOffsets> parse_asyncio_debug(std::span<const std::byte> section);

std::unique_ptr<TaskReader> make_asyncio_debug_task_reader(const RemoteMemory& memory, const Interpreter& interp,
                                                           const ObjectLayout& objects);

}  // namespace loopspy
