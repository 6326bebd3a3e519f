// The loop over time, as a Chrome Trace Event file (JSON), which Perfetto, chrome://tracing and
// speedscope open. Per loop thread, on its own track: one slice per loop iteration (the busy time
// between two selector waits; iterations the kernel folded, short ones, as one slice saying how
// many), an "idle" slice per selector wait, inside each iteration a slice per callback named by
// its coroutine and task ("handler [task NAME]", exact from the recording), and inside each
// callback a slice per off-CPU interval named by its syscall (or "preempted") with the Python
// stack in args. Callbacks of at least --threshold are in category "slow" with args.slow true,
// and marked by an instant event "slow callback". Other threads get a track of their on-CPU
// samples (consecutive samples of one stack as one slice, named by its innermost frame).
// Timestamps are microseconds since the recording started; tracks are named by process and
// thread.
#pragma once

#include <string>

#include "recording/profile.hpp"
#include "reports/loop_analysis.hpp"
#include "reports/task_attribution.hpp"

namespace loopspy {

std::string render_chrome_trace(const Profile& profile, const LoopAnalysis& analysis, const AnalysisFilter& filter,
                                const TaskAttribution* tasks, const CulpritRules& culprit);

}  // namespace loopspy
