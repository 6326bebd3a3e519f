#include "reports/thread_frames.hpp"

namespace loopspy {

std::string thread_root_frame(const Profile& profile, Tid tid) {
    std::string name = profile.thread_name(tid);
    if (name.empty()) name = "?";
    return "thread " + name + " (" + std::to_string(tid.value) + ")";
}

std::vector<std::string> root_frames(const Profile& profile, Tid tid) {
    std::vector<std::string> frames;
    if (profile.multi_process()) frames.push_back(profile.process_label(profile.process_of(tid)));
    frames.push_back(thread_root_frame(profile, tid));
    return frames;
}

}  // namespace loopspy
