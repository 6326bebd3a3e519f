#include "symbolizer/asyncio/asyncio_tasks.hpp"

#include "symbolizer/asyncio/tasks_asyncio_debug.hpp"
#include "symbolizer/asyncio/tasks_module_sets.hpp"

namespace loopspy {

namespace {

std::optional<std::string> counter_name(std::optional<std::uint64_t> head, std::optional<std::uint64_t> digits,
                                        LongHeader header) {
    if (!head || !digits) return std::nullopt;
    std::uint64_t ndigits = *head;
    if (header == LongHeader::Tagged) {
        if ((*head & 3) == 2) return std::nullopt;
        ndigits = *head >> 3;
    }
    if (ndigits > 2) return std::nullopt;
    std::uint64_t v = ndigits == 0 ? 0 : (*digits & 0x3fffffff) | (ndigits == 2 ? ((*digits >> 32) & 0x3fffffff) << 30 : 0);
    return "Task-" + std::to_string(v);
}

}  // namespace

std::optional<std::string> counter_task_name(const RemoteMemory& memory, RemoteAddr int_object, LongHeader header) {
    return counter_name(memory.read_u64(RemoteAddr{int_object.value + objects::kLongHeader}),
                        memory.read_u64(RemoteAddr{int_object.value + objects::kLongDigits}), header);
}

std::optional<std::string> counter_task_name(std::span<const std::byte> int_object, LongHeader header) {
    return counter_name(load_at<std::uint64_t>(int_object, objects::kLongHeader),
                        load_at<std::uint64_t>(int_object, objects::kLongDigits), header);
}

std::unique_ptr<TaskReader> make_task_reader(const RemoteMemory& memory, const Interpreter& interp) {
    const ObjectLayout* objects = object_layout(interp.version.minor());
    if (!objects) return nullptr;
    switch (objects->tasks) {
        case TaskSource::AsyncioDebug: return make_asyncio_debug_task_reader(memory, interp, *objects);
        case TaskSource::ModuleSets: return make_module_sets_task_reader(memory, interp, *objects);
    }
    return nullptr;
}

}  // namespace loopspy
