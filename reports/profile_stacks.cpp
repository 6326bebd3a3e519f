#include "reports/profile_stacks.hpp"

#include <map>

namespace loopspy {

std::string thread_root_frame(const Profile& profile, Tid tid) {
    std::string name = profile.thread_name(tid);
    if (name.empty()) name = "?";
    return "thread " + name + " (" + std::to_string(tid.value) + ")";
}

std::vector<WeightedStack> profile_stacks(const Profile& profile) {
    // Sum per (thread, stack) first so each distinct stack is formatted once.
    std::map<std::pair<Tid, StackId>, std::int64_t> weights_ns;
    for (const auto& s : profile.samples()) weights_ns[{s.tid, s.stack}] += s.weight.value;

    std::vector<WeightedStack> out;
    out.reserve(weights_ns.size());
    for (const auto& [key, ns] : weights_ns) {
        WeightedStack ws;
        ws.frames.push_back(thread_root_frame(profile, key.first));
        for (FrameId f : profile.stack(key.second)) ws.frames.push_back(profile.format_frame(f));
        ws.weight_us = static_cast<std::uint64_t>(ns / 1000);
        out.push_back(std::move(ws));
    }
    return out;
}

}  // namespace loopspy
