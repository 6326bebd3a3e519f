#include "reports/thread_frames.hpp"

namespace loopspy {

std::string thread_root_frame(const Profile& profile, Tid tid) {
    std::string name = profile.thread_name(tid);
    if (name.empty()) name = "?";
    return "thread " + name + " (" + std::to_string(tid.value) + ")";
}

}  // namespace loopspy
