#include "symbolizer/cpython/py_objects.hpp"

#include "symbolizer/cpython/object_layout.hpp"

namespace loopspy {

std::vector<std::uint64_t> read_set_keys(const RemoteMemory& memory, RemoteAddr set, std::uint64_t max_slots) {
    std::vector<std::uint64_t> out;
    auto mask = memory.read_u64(RemoteAddr{set.value + objects::kSetMask});
    auto table = memory.read_u64(RemoteAddr{set.value + objects::kSetTable});
    if (!mask || !table || *mask + 1 > max_slots) return out;
    std::vector<std::uint64_t> slots((*mask + 1) * 2);  // setentry: key, hash
    if (!memory.read(RemoteAddr{*table}, std::as_writable_bytes(std::span(slots)))) return out;
    for (std::uint64_t i = 0; i <= *mask; ++i) {
        if (slots[2 * i]) out.push_back(slots[2 * i]);
    }
    return out;
}

}  // namespace loopspy
