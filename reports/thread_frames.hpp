// The root frame every stack-shaped output starts with, so threads are told apart.
#pragma once

#include <string>

#include "recording/profile.hpp"

namespace loopspy {

/// "thread NAME (tid)".
std::string thread_root_frame(const Profile& profile, Tid tid);

}  // namespace loopspy
