// Memory for replay. Replaying a long recording fills tens of MiB of samples and builds as much
// again in per-report working arrays; on a VM each first touch of a 4 KiB page costs microseconds,
// and page faults were the largest single cost of `loopspy replay`. Both are hints: nothing breaks
// without them.
#pragma once

#include <malloc.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>

namespace loopspy {

/// Asks for transparent huge pages behind a large buffer.
inline void advise_huge_pages(const void* p, std::size_t bytes) {
    constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
    const auto begin = (reinterpret_cast<std::uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
    const auto end = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(kHuge - 1);
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

/// From here on, large blocks come from the heap and freed ones stay in it, so that each report's
/// working arrays reuse pages an earlier one touched instead of faulting in fresh ones. For a
/// process about to read a recording and exit, not for the recorder, whose memory must stay flat.
inline void keep_freed_memory_for_reuse() {
    ::mallopt(M_MMAP_THRESHOLD, 1 << 30);
    ::mallopt(M_TRIM_THRESHOLD, 1 << 30);
    ::mallopt(M_TOP_PAD, 64 << 20);
}

}  // namespace loopspy
