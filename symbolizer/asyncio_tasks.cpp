#include "symbolizer/asyncio_tasks.hpp"

#include "symbolizer/tasks_311.hpp"
#include "symbolizer/tasks_modern.hpp"

namespace loopspy {

std::unique_ptr<TaskReader> make_task_reader(const RemoteMemory& memory, const Interpreter& interp) {
    if (interp.version.minor() >= 14) return make_modern_task_reader(memory, interp);
    return make_tasks_311_reader(memory, interp);
}

}  // namespace loopspy
