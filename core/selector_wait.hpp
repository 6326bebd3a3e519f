// One selector wait of a loop thread: what the kernel side emits (bpf/event_source.hpp), what
// the recording stores and what the loop analysis reads, the same struct all the way.
#pragma once

#include <cstdint>

#include "core/types.hpp"

namespace loopspy {

/// A wait of a thread in its selector (epoll_wait, epoll_pwait, epoll_pwait2, select, pselect6,
/// poll, ppoll): the boundary between two loop iterations. To keep a callback-heavy loop cheap,
/// the kernel folds waits that were short and followed short busy periods into the next wait it
/// reports: their count and their total wait time ride along.
struct SelectorWait {
    Tid tid;
    std::int32_t syscall = 0;
    Nanoseconds previous_leave;  // when the previous selector wait returned (0 if none seen)
    Nanoseconds enter;
    Nanoseconds leave;
    std::uint32_t folded_waits = 0;  // short waits between previous_leave and enter, not reported one by one
    Nanoseconds folded_wait_time;    // their total duration
    Nanoseconds folded_busy_time;    // the total busy time before each of them
    bool operator==(const SelectorWait&) const = default;
};

}  // namespace loopspy
