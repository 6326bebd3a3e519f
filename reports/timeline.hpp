// Each thread's time as consecutive spans, in time order, for the outputs that keep time
// (speedscope's evented profiles): an on-CPU sample stands for the sampling period that ended
// at its instant, an off-CPU interval for its exact stretch, and (in wall mode) a loop thread's
// selector wait for its idle stretch. Spans never overlap: one that starts before the previous
// one ended starts where it ended; an on-CPU span that starts less than a sampling period after
// the previous one ended starts there too (timer samples do not come exactly a period apart).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "recording/profile.hpp"
#include "reports/flame_modes.hpp"
#include "reports/loop_analysis.hpp"

namespace loopspy {

struct TimelineSpan {
    enum class Kind { OnCpu, OffCpu, Idle };
    Nanoseconds start, end;
    Kind kind = Kind::OnCpu;
    StackId stack = 0;      // OnCpu, OffCpu
    std::string reason;     // OffCpu: why, as its flame graph leaf (off_cpu_leaf)
};

/// The spans of every selected thread that fall in the filter's window, clipped to it.
std::map<Tid, std::vector<TimelineSpan>> thread_timelines(const Profile& profile, FlameMode mode,
                                                          const std::vector<Tid>& loop_threads,
                                                          const AnalysisFilter& filter);

}  // namespace loopspy
