// Tasks found (CPython 3.11 to 3.13: TaskSource::ModuleSets) where asyncio.all_tasks() finds them: the
// `asyncio.tasks` module's WeakSet of scheduled tasks (`_all_tasks` in 3.11, `_scheduled_tasks`
// after) and, from 3.12, its set `_eager_tasks`. Who awaits whom comes from the futures'
// done-callbacks: a task awaiting another registers its wake-up method (a builtin method bound to
// it), asyncio.gather a closure holding its _GatheringFuture (awaited by the task whose
// fut_waiter it is), a TaskGroup its bound method _on_task_done (awaited by the group's
// _parent_task).
#pragma once

#include <memory>

#include "symbolizer/asyncio/asyncio_tasks.hpp"
#include "symbolizer/cpython/object_layout.hpp"

namespace loopspy {

std::unique_ptr<TaskReader> make_module_sets_task_reader(const RemoteMemory& memory, const Interpreter& interp,
                                                         const ObjectLayout& objects);

}  // namespace loopspy
