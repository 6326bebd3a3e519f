// The weighted stacks of the flame graph and collapsed outputs, in one of three modes:
//
//   Cpu   on-CPU samples only: where the CPU time went.
//   Busy  on-CPU samples and off-CPU intervals of every thread (the default): where the time went
//         while threads were doing something. A loop thread's off-CPU intervals are blocking
//         calls (its waits in the selector are not among them); another thread's count as its
//         time too.
//   Wall  Busy, plus each loop thread's idle time (its selector waits) as a frame "<idle>" right
//         under the thread's root: the loop's whole wall-clock time.
//
// Every stack starts with the thread's root frame, "thread NAME (TID)". An off-CPU stack ends
// with a frame saying why: "<off-CPU: clock_nanosleep>", "<off-CPU: preempted>", ... Weights
// are microseconds; identical stacks are merged; the output is sorted by frames.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "recording/profile.hpp"
#include "reports/loop_analysis.hpp"
#include "reports/stacks.hpp"
#include "reports/task_attribution.hpp"

namespace loopspy {

enum class FlameMode { Cpu, Busy, Wall };

/// "cpu", "busy", "wall".
std::string_view flame_mode_name(FlameMode mode);
/// Parses "cpu", "busy" or "wall"; nullopt otherwise.
std::optional<FlameMode> parse_flame_mode(std::string_view name);

/// The frame under the thread's root that stands for a loop thread's idle time.
inline constexpr std::string_view kIdleFrame = "<idle>";

/// The stacks of `mode`. Samples are taken when they fall in the window (on-CPU: their time;
/// off-CPU: the part of the interval inside it) and their thread passes the filter; idle time
/// (Wall) is each selected loop thread's loop_stats(...).idle over the window.
///
/// With `async` (--async), a sample that ran in a known task is shown as the user thinks of it:
/// under the thread's root, the tasks awaiting it and their await chains (TaskAttribution::
/// async_prefix), then "<task> NAME", then the sample's own frames from the task's coroutine
/// inward (the event loop's frames above it are left out). Other samples stay physical.
///
/// With `by_function` (--function), a frame is its function, "qualname (file)": the lines a
/// function was at are one frame.
std::vector<WeightedStack> mode_stacks(const Profile& profile, FlameMode mode, const std::vector<Tid>& loop_threads,
                                       const AnalysisFilter& filter = {}, const TaskAttribution* async = nullptr,
                                       bool by_function = false);

/// --tasks: the wall time tasks spent suspended, each under its awaiting tasks (as with --async)
/// and ending with its await chain and "<awaiting TYPE>". Roots are "tasks (suspended)".
std::vector<WeightedStack> task_wait_stacks(const Profile& profile, const TaskAttribution& tasks,
                                            const AnalysisFilter& filter = {});

}  // namespace loopspy
