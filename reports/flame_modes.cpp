#include "reports/flame_modes.hpp"

#include <map>
#include <tuple>

#include "reports/thread_frames.hpp"
#include "reports/syscalls.hpp"

namespace loopspy {

std::string_view flame_mode_name(FlameMode mode) {
    switch (mode) {
        case FlameMode::Cpu: return "cpu";
        case FlameMode::Busy: return "busy";
        case FlameMode::Wall: return "wall";
    }
    return "busy";
}

std::optional<FlameMode> parse_flame_mode(std::string_view name) {
    if (name == "cpu") return FlameMode::Cpu;
    if (name == "busy") return FlameMode::Busy;
    if (name == "wall") return FlameMode::Wall;
    return std::nullopt;
}

std::vector<WeightedStack> mode_stacks(const Profile& profile, FlameMode mode, const std::vector<Tid>& loop_threads,
                                       const AnalysisFilter& filter) {
    const TimeWindow window = analysis_window(profile, filter);
    // Summed per (thread, stack, why off-CPU) first, so each distinct stack is formatted once.
    // The reason is empty for on-CPU time.
    std::map<std::tuple<Tid, StackId, std::string>, std::int64_t> weights_ns;
    for (const SampleRecord& s : profile.samples()) {
        if (!thread_selected(filter, s.tid)) continue;
        if (s.kind == SampleKind::OnCpu) {
            if (window.contains(s.time)) weights_ns[{s.tid, s.stack, std::string()}] += s.weight.value;
            continue;
        }
        if (mode == FlameMode::Cpu || (s.off_flags & kOffIdle)) continue;
        const Nanoseconds w = window.overlap(s.time, s.time + s.weight);
        if (w.value > 0) weights_ns[{s.tid, s.stack, off_cpu_reason(s.syscall, s.off_flags)}] += w.value;
    }

    // Distinct stack ids may format alike: merge again by the frames' text.
    std::map<std::vector<std::string>, std::int64_t> merged_ns;
    for (const auto& [key, ns] : weights_ns) {
        const auto& [tid, stack, reason] = key;
        std::vector<std::string> frames;
        frames.push_back(thread_root_frame(profile, tid));
        for (FrameId f : profile.stack(stack)) frames.push_back(profile.format_frame(f));
        if (!reason.empty()) frames.push_back("<off-CPU: " + reason + ">");
        merged_ns[std::move(frames)] += ns;
    }
    if (mode == FlameMode::Wall) {
        for (Tid tid : loop_threads) {
            if (!thread_selected(filter, tid)) continue;
            const Nanoseconds idle = loop_stats(profile, tid, window).idle;
            if (idle.value > 0) merged_ns[{thread_root_frame(profile, tid), std::string(kIdleFrame)}] += idle.value;
        }
    }
    std::vector<WeightedStack> out;
    out.reserve(merged_ns.size());
    for (auto& [frames, ns] : merged_ns) out.push_back({frames, static_cast<std::uint64_t>(ns / 1000)});
    return out;
}

}  // namespace loopspy
