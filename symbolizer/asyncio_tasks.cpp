#include "symbolizer/asyncio_tasks.hpp"

#include "symbolizer/tasks_modern.hpp"
#if __has_include("symbolizer/tasks_legacy.hpp")
#include "symbolizer/tasks_legacy.hpp"
#define LOOPSPY_HAVE_LEGACY_TASKS 1
#endif

namespace loopspy {

std::unique_ptr<TaskReader> make_task_reader(const RemoteMemory& memory, const Interpreter& interp) {
    if (interp.version.minor() >= 14) return make_modern_task_reader(memory, interp);
#ifdef LOOPSPY_HAVE_LEGACY_TASKS
    return make_legacy_task_reader(memory, interp);
#else
    return nullptr;
#endif
}

}  // namespace loopspy
