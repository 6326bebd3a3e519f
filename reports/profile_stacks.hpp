// From a Profile to the weighted stacks every stack-shaped output (flame graph, collapsed) draws.
#pragma once

#include <vector>

#include "recording/profile.hpp"
#include "reports/stacks.hpp"

namespace loopspy {

/// "thread NAME (tid)", the root frame that keeps threads apart.
std::string thread_root_frame(const Profile& profile, Tid tid);

/// One weighted stack per sample: the thread's root frame, then the Python frames outermost first.
/// Weights are microseconds. Identical stacks are merged.
std::vector<WeightedStack> profile_stacks(const Profile& profile);

}  // namespace loopspy
