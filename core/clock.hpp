// The clocks loopspy reads, as Nanoseconds. CLOCK_MONOTONIC is the kernel side's clock too
// (bpf_ktime_get_ns), so user-space times and sample times compare directly.
#pragma once

#include <time.h>

#include "core/types.hpp"

namespace loopspy {

inline Nanoseconds read_clock(clockid_t clock) {
    timespec ts{};
    ::clock_gettime(clock, &ts);
    return Nanoseconds{static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec};
}

inline Nanoseconds monotonic_now() { return read_clock(CLOCK_MONOTONIC); }
/// CPU time of the calling thread.
inline Nanoseconds thread_cpu_time() { return read_clock(CLOCK_THREAD_CPUTIME_ID); }

}  // namespace loopspy
