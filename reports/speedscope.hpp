// speedscope's own file format (https://www.speedscope.app/file-format-schema.json): one evented
// profile per thread, its frames opened and closed in time order, so speedscope's Time Order view
// is the thread's real timeline (on-CPU samples as the periods they stand for, off-CPU intervals
// and, in wall mode, a loop's idle waits exactly). Values are nanoseconds since the recording
// started; frames carry their file and line; off-CPU and idle time end in the same
// "<off-CPU: REASON>" and "<idle>" frames as the flame graph's.
#pragma once

#include <string>
#include <vector>

#include "recording/profile.hpp"
#include "reports/flame_modes.hpp"
#include "reports/loop_analysis.hpp"

namespace loopspy {

std::string render_speedscope(const Profile& profile, FlameMode mode, const std::vector<Tid>& loop_threads,
                              const AnalysisFilter& filter);

}  // namespace loopspy
