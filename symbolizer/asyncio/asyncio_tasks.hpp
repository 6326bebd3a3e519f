// The asyncio Tasks of a target, read out of its memory at one instant: which exist, what each
// is called, which coroutine it drives, and which tasks await it. Versions differ in where the
// tasks live (3.14+: linked lists described by the `_asyncio` module's AsyncioDebug section;
// 3.11-3.13: the `asyncio.tasks` module's task sets), so each has its own reader behind one
// function. Every object read is type-checked; a task whose memory does not look like a live Task
// is dropped, never reported under a stale name.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/types.hpp"
#include "symbolizer/cpython/interpreter.hpp"
#include "symbolizer/process/remote_memory.hpp"
#include "symbolizer/cpython/object_layout.hpp"

namespace loopspy {

/// One Task as read at one instant. `addr` identifies it only while it lives: after it is freed a
/// new Task may reuse the address, so a reader matches tasks across instants by (addr, coro).
struct RawTask {
    RemoteAddr addr;                      // the Task object
    RemoteAddr coro;                      // its coroutine object (task_coro); 0 once it has none
    std::string name;                     // task_name as a str ("Task-N" when stored as an int)
    bool done = false;                        // the future is no longer pending
    RemoteAddr waiting_on;                    // task_fut_waiter when known (0: none or unknown)
    std::vector<RemoteAddr> awaited_by;       // tasks that await this one (gather, TaskGroup, await)
};

/// Reads the tasks of one interpreter version. Created once per target; it may cache where the
/// task containers are (they live as long as asyncio is imported) but re-validates them.
/// Where the running task of a thread can be read at an instant (by the kernel side, at each
/// sample): 3.11-3.13 asyncio's dict of current tasks (loop -> task); 3.14+ a field of the
/// thread state. And where a Task keeps its coroutine and its name.
struct TaskFinder {
    RemoteAddr current_tasks{0};          // the dict, or 0
    std::uint64_t tstate_running_task = 0;  // the thread state's field, or 0
    std::uint64_t task_coro = 0, task_name = 0;
    bool operator==(const TaskFinder&) const = default;
};

class TaskReader {
public:
    virtual ~TaskReader() = default;
    /// Every task of the target right now. An empty list when asyncio is not (yet) imported.
    /// Errors only for a target that cannot be read at all.
    virtual Result<std::vector<RawTask>> read_tasks() = 0;
    /// Once read_tasks has found asyncio: how to find the running task at an instant.
    virtual std::optional<TaskFinder> task_finder() const = 0;
};

/// The name of a task whose task_name is an int counter (unnamed tasks, from 3.12 lazily): "Task-N".
/// `int_object` is the int; nullopt if it is not a small non-negative int.
std::optional<std::string> counter_task_name(const RemoteMemory& memory, RemoteAddr int_object, LongHeader header);
/// The same from the int's first bytes (at least objects::kLongDigits + 8 of them).
std::optional<std::string> counter_task_name(std::span<const std::byte> int_object, LongHeader header);

/// The reader for `interp`'s version (3.8-3.15).
std::unique_ptr<TaskReader> make_task_reader(const RemoteMemory& memory, const Interpreter& interp);

}  // namespace loopspy
