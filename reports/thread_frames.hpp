// The root frame every stack-shaped output starts with, so threads are told apart.
#pragma once

#include <string>
#include <vector>

#include "recording/profile.hpp"

namespace loopspy {

/// "thread NAME (tid)".
std::string thread_root_frame(const Profile& profile, Tid tid);
/// The frames every stack of a thread starts with: its process, "process PID COMMAND", when the
/// recording holds several (each process its own section), then the thread.
std::vector<std::string> root_frames(const Profile& profile, Tid tid);

}  // namespace loopspy
