// A hint to back a large buffer with transparent huge pages. Replaying a long recording fills
// tens of MiB of samples; on a VM each 4 KiB page fault costs microseconds, and faulting them
// in was the largest single cost of `loopspy replay`. Only a hint: nothing breaks without it.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>

namespace loopspy {

inline void advise_huge_pages(const void* p, std::size_t bytes) {
    constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
    const auto begin = (reinterpret_cast<std::uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
    const auto end = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(kHuge - 1);
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

}  // namespace loopspy
