#include "symbolizer/asyncio_tasks.hpp"

#include "symbolizer/tasks_311.hpp"
#include "symbolizer/tasks_modern.hpp"

namespace loopspy {

std::optional<std::string> counter_task_name(const RemoteMemory& memory, RemoteAddr int_object, int minor) {
    // PyLongObject: 3.11 keeps the signed digit count in ob_size (at 16); 3.12+ keep
    // ndigits << 3 | sign (0 positive, 1 zero, 2 negative) in lv_tag (at 16). 30-bit digits from 24.
    auto head = memory.read_u64(RemoteAddr{int_object.value + 16});
    auto digits = memory.read_u64(RemoteAddr{int_object.value + 24});
    if (!head || !digits) return std::nullopt;
    std::uint64_t ndigits = *head;
    if (minor >= 12) {
        if ((*head & 3) == 2) return std::nullopt;
        ndigits = *head >> 3;
    }
    if (ndigits > 2) return std::nullopt;
    std::uint64_t v = ndigits == 0 ? 0 : (*digits & 0x3fffffff) | (ndigits == 2 ? ((*digits >> 32) & 0x3fffffff) << 30 : 0);
    return "Task-" + std::to_string(v);
}

std::unique_ptr<TaskReader> make_task_reader(const RemoteMemory& memory, const Interpreter& interp) {
    if (interp.version.minor() >= 14) return make_modern_task_reader(memory, interp);
    return make_tasks_311_reader(memory, interp);
}

}  // namespace loopspy
