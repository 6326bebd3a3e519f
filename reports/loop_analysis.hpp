// The event-loop view of a recording: which threads run an asyncio loop, how busy each loop was,
// which callbacks held it for too long (and whether they burned CPU or blocked, and where), and
// which blocking calls loop threads made.
//
// Inputs (recording/profile.hpp): on-CPU samples, off-CPU intervals (never the idle time inside
// the selector wait: that is what the SelectorWaits measure) and SelectorWaits. A busy period
// is the time between a selector wait's return and the next selector call, i.e. the span
// [previous_leave, enter] of one reported wait; the kernel folds short waits after short busy
// periods into the next reported wait, so every busy period of 1 ms or more is exact while the
// folded ones only add to the totals.
//
// Time window and thread filter (AnalysisFilter): totals (busy, idle, iterations, flame graph
// weights) are clipped to the window; callbacks and blocking calls are listed when they overlap
// it and are then measured whole.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/types.hpp"
#include "recording/profile.hpp"

namespace loopspy {

class TaskAttribution;

/// Which part of a recording an analysis looks at.
struct AnalysisFilter {
    std::optional<double> from_s;  // seconds since info.start; none: from the start
    std::optional<double> to_s;    // seconds since info.start; none: to the end
    std::vector<Tid> threads;      // only these threads; empty: every thread
};

/// A span [begin, end) of CLOCK_MONOTONIC time.
struct TimeWindow {
    Nanoseconds begin;
    Nanoseconds end;
    bool contains(Nanoseconds t) const { return t >= begin && t < end; }
    /// How much of [b, e) lies inside the window.
    Nanoseconds overlap(Nanoseconds b, Nanoseconds e) const;
    bool overlaps(Nanoseconds b, Nanoseconds e) const;  // a zero-length [b, b] overlaps if b is inside
};

/// The analysed span: [info.start + from_s, info.start + to_s) intersected with
/// [info.start, info.end]. A profile without an end (info.end <= info.start) has no upper bound.
TimeWindow analysis_window(const Profile& profile, const AnalysisFilter& filter);
bool thread_selected(const AnalysisFilter& filter, Tid tid);

/// Whether a frame shows an asyncio event loop or its runner: BaseEventLoop._run_once,
/// BaseEventLoop.run_forever, BaseEventLoop.run_until_complete, Runner.run, `run` in a file
/// ending asyncio/runners.py, or any frame of a file under a /uvloop/ directory.
bool is_loop_frame(const Profile& profile, FrameId frame);

/// The event-loop threads, sorted by tid: threads that waited in a selector and have a sample
/// (on- or off-CPU) with a loop frame. With `override` (--loop-thread), just that thread.
std::vector<Tid> find_loop_threads(const Profile& profile, std::optional<Tid> override = std::nullopt);

/// How one loop spent the window.
struct LoopStats {
    Tid thread;
    std::uint64_t iterations = 0;  // selector waits, folded ones included
    Nanoseconds busy;              // between a selector return and the next selector call
    Nanoseconds idle;              // inside selector waits
};

/// The thread's selector waits, by when they were entered.
std::vector<const SelectorWait*> waits_of(const Profile& profile, Tid tid);

/// Totals from the thread's SelectorWaits, clipped to the window. Folded waits are spread evenly
/// over the span they covered (only matters for a span cut by the window's edges). The busy
/// time before a thread's first reported wait, and after its last one, is not counted: where it
/// began (or whether the loop was then waiting in a selector call entered before the recording)
/// is unknown.
LoopStats loop_stats(const Profile& profile, Tid thread, const TimeWindow& window);

/// Which frames are the program's own code, for a callback's culprit: not the standard library
/// (a file under a `lib/pythonX.Y/` directory, or frozen `<frozen ...>`), not an installed package
/// (under `site-packages/` or `dist-packages/`), not a marker frame. `include` globs (fnmatch,
/// on the file name) make a file the program's own whatever its place, `exclude` globs make it
/// not; include wins.
struct CulpritRules {
    std::vector<std::string> include;  // --culprit-include GLOB
    std::vector<std::string> exclude;  // --culprit-exclude GLOB
    bool own_code(std::string_view file) const;
};

/// The innermost frame of the program's own code in a stack, or none.
std::optional<FrameId> culprit_frame(const Profile& profile, StackId stack, const CulpritRules& rules);

/// One interval a callback spent off-CPU.
struct BlockingInterval {
    Nanoseconds start;     // absolute (CLOCK_MONOTONIC), clipped to the callback
    Nanoseconds duration;  // clipped to the callback
    std::string reason;    // off_cpu_reason(): the syscall's name, "preempted", ...
    bool gil = false;      // asleep waiting to take the GIL (kOffGil)
    Tid gil_holder;        // the thread holding the GIL meanwhile (0: unknown)
    std::vector<std::string> stack;  // formatted frames, outermost first
};

/// Threads that held the GIL while others waited for it, by the time they were waited on,
/// longest first.
struct GilHolder {
    Tid thread;
    Nanoseconds time;
};
std::vector<GilHolder> longest_first(const std::map<Tid, Nanoseconds>& by_thread);

/// A callback that held its loop for at least the threshold.
struct SlowCallback {
    Tid thread;
    Nanoseconds start;  // absolute (CLOCK_MONOTONIC)
    Nanoseconds duration;
    Nanoseconds on_cpu;   // duration - off_cpu
    Nanoseconds off_cpu;  // off-CPU intervals inside it
    Nanoseconds gil_wait;  // of which waiting to take the GIL
    std::string callback;             // the identity frame, formatted; "<event loop>" if no sample had an
                                      // identity, "<no samples>" if there were none
    std::optional<std::string> task;  // the asyncio task it ran in (reports/task_attribution.hpp), if known
    std::vector<std::string> stack;   // the stack with the most time inside it, formatted, outermost first
    std::vector<BlockingInterval> blocking;  // longest first
    /// The innermost frame of the program's own code (CulpritRules) that holds most of its time,
    /// formatted; none when no sample in it shows any.
    std::optional<std::string> culprit;
};

/// The callback name of the loop's own time spent mostly waiting to take the GIL.
inline constexpr std::string_view kGilStall = "<GIL wait>";

enum class CallbackOrder { Duration, Time };

/// Splits every busy period of at least `threshold` on the given loop threads into callbacks and
/// returns those of at least `threshold` that overlap the window.
///
/// A sample's callback identity: the first frame after the innermost Handle._run (asyncio's
/// events.py), skipping Task.__step / Task.__step_run_and_handle_result / Task._Task__step /
/// Context.run frames (the Handle._run frame itself if nothing follows: a native callback).
/// Without Handle._run: the innermost BaseEventLoop._run_once if the stack is in it (the stdlib
/// loop's own work between callbacks: the selector's Python side, waiting for the GIL after the
/// wait, the ready queue), else the outermost coroutine frame, else the frame right after the
/// last loop/runner frame (native loops such as uvloop), or that loop frame itself if nothing
/// follows it (the native loop's own work), else none. So the loop's own time is not charged to
/// a neighbouring callback; it is a "callback" of its own, reported like any other when it lasts
/// the threshold. Identities compare by qualname and file, not line. Samples without an identity
/// join whichever callback surrounds them. Between consecutive samples of different identities
/// the boundary is the midpoint of their times, moved out of any off-CPU interval (after one
/// that ends the earlier callback, before one that starts the later, out of one between them to
/// its nearer end). The first callback begins with the busy period, the last ends with it.
std::vector<SlowCallback> find_slow_callbacks(const Profile& profile, const std::vector<Tid>& loop_threads,
                                              Nanoseconds threshold, const TimeWindow& window,
                                              CallbackOrder order = CallbackOrder::Duration,
                                              const TaskAttribution* tasks = nullptr,
                                              const CulpritRules& culprit = CulpritRules{});

/// Off-CPU intervals of loop threads with the same stack and reason (a GIL wait apart).
struct BlockingCall {
    Pid pid;                         // the process whose loop threads made it
    std::vector<std::string> stack;  // formatted frames, outermost first
    std::string reason;              // off_cpu_reason()
    bool gil = false;                // waits to take the GIL (kOffGil)
    std::vector<GilHolder> gil_holders;  // gil: who held it, when the kernel could read it
    std::optional<std::string> culprit;  // the stack's innermost frame of the program's own code
    std::uint64_t count = 0;
    Nanoseconds total;
    Nanoseconds max;
    Nanoseconds p50;  // nearest-rank
    Nanoseconds p99;  // nearest-rank
};

/// Every off-CPU interval of the loop threads that overlaps the window (whole), grouped by
/// (process, stack, reason), sorted by total time, longest first (ties: count, then process,
/// stack and reason).
std::vector<BlockingCall> aggregate_blocking_calls(const Profile& profile, const std::vector<Tid>& loop_threads,
                                                   const TimeWindow& window,
                                                   const CulpritRules& culprit = CulpritRules{});

/// The nearest-rank percentile (0 < p <= 100) of ascending values: the ceil(p/100 * n)-th
/// smallest. Zero for no values.
Nanoseconds nearest_rank_percentile(const std::vector<Nanoseconds>& ascending, double p);

struct LoopAnalysisOptions {
    Nanoseconds threshold = milliseconds(100);  // --threshold MS (a callback of exactly this is slow)
    CallbackOrder order = CallbackOrder::Duration;  // --sort duration|time
    AnalysisFilter filter;                      // --from/--to/--thread
    std::optional<Tid> loop_thread;             // --loop-thread TID
    CulpritRules culprit;                       // --culprit-include / --culprit-exclude
};

struct SampleCounts {
    std::uint64_t on_cpu = 0;   // on-CPU samples in the window, of the selected threads
    std::uint64_t off_cpu = 0;  // off-CPU intervals overlapping the window, of the selected threads
    std::uint64_t lost = 0;     // the whole recording's lost on-CPU samples and off-CPU intervals
};

struct LoopAnalysis {
    TimeWindow window;
    bool whole_recording = true;  // no --from/--to narrowed the window
    Nanoseconds threshold;
    CallbackOrder order = CallbackOrder::Duration;
    SampleCounts samples;
    std::vector<Tid> loop_threads;  // found (or given), then narrowed by the thread filter; by tid
    std::vector<LoopStats> per_thread;  // one per loop thread, same order
    LoopStats total;                    // summed over loop threads (thread = 0)
    std::vector<SlowCallback> slow_callbacks;
    /// When no callback reached the threshold: the longest one (any duration), if any ran.
    std::optional<SlowCallback> longest_callback;
    std::vector<BlockingCall> blocking_calls;
};

/// Everything above for one recording.
/// `tasks` names the callbacks' tasks; when null, one is made from the profile's task snapshots.
LoopAnalysis analyze_loops(const Profile& profile, const LoopAnalysisOptions& options,
                           const TaskAttribution* tasks = nullptr);

}  // namespace loopspy
