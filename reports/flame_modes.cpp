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
                                       const AnalysisFilter& filter, const TaskAttribution* async, bool by_function) {
    const TimeWindow window = analysis_window(profile, filter);
    // Summed per (thread, stack, why off-CPU) first, so each distinct stack is formatted once.
    // The reason is empty for on-CPU time.
    // With --async, also per async prefix (-1: none), interned.
    std::map<std::tuple<Tid, StackId, std::string, int>, std::int64_t> weights_ns;
    std::map<std::vector<std::string>, int> prefix_ids;
    std::vector<const std::vector<std::string>*> prefixes;
    const auto& samples = profile.samples();
    for (std::size_t i = 0; i < samples.size(); ++i) {
        const SampleRecord& s = samples[i];
        if (!thread_selected(filter, s.tid)) continue;
        Nanoseconds w;
        std::string reason;
        if (s.kind == SampleKind::OnCpu) {
            if (!window.contains(s.time)) continue;
            w = s.weight;
        } else {
            if (mode == FlameMode::Cpu) continue;
            w = window.overlap(s.time, s.time + s.weight);
            if (w.value <= 0) continue;
            reason = off_cpu_leaf(s.syscall, s.off_flags);
        }
        int prefix = -1;
        if (async) {
            if (auto task = async->task_of(i)) {
                auto [it, fresh] = prefix_ids.try_emplace(async->async_prefix(*task, s.time), static_cast<int>(prefixes.size()));
                if (fresh) prefixes.push_back(&it->first);
                prefix = it->second;
            }
        }
        weights_ns[{s.tid, s.stack, std::move(reason), prefix}] += w.value;
    }

    // Distinct stack ids may format alike: merge again by the frames' text.
    std::map<std::vector<std::string>, std::int64_t> merged_ns;
    for (const auto& [key, ns] : weights_ns) {
        const auto& [tid, stack, reason, prefix] = key;
        std::vector<std::string> frames = root_frames(profile, tid);
        auto stack_frames = profile.stack(stack);
        std::size_t first = 0;
        if (prefix >= 0) {
            frames.insert(frames.end(), prefixes[prefix]->begin(), prefixes[prefix]->end());
            first = async->task_frames_begin(stack);
        }
        for (std::size_t k = first; k < stack_frames.size(); ++k) {
            frames.push_back(profile.format_frame(stack_frames[k], !by_function));
        }
        if (!reason.empty()) frames.push_back(reason);
        merged_ns[std::move(frames)] += ns;
    }
    if (mode == FlameMode::Wall) {
        for (Tid tid : loop_threads) {
            if (!thread_selected(filter, tid)) continue;
            const Nanoseconds idle = loop_stats(profile, tid, window).idle;
            if (idle.value <= 0) continue;
            std::vector<std::string> frames = root_frames(profile, tid);
            frames.emplace_back(kIdleFrame);
            merged_ns[std::move(frames)] += idle.value;
        }
    }
    std::vector<WeightedStack> out;
    out.reserve(merged_ns.size());
    for (auto& [frames, ns] : merged_ns) out.push_back({frames, static_cast<std::uint64_t>(ns / 1000)});
    return out;
}

}  // namespace loopspy

namespace loopspy {

std::vector<WeightedStack> task_wait_stacks(const Profile& profile, const TaskAttribution& tasks,
                                            const AnalysisFilter& filter) {
    const TimeWindow window = analysis_window(profile, filter);
    std::map<std::vector<std::string>, std::int64_t> merged_ns;
    for (const TaskAttribution::Suspension& s : tasks.suspensions(window.begin, window.end)) {
        std::vector<std::string> frames;
        if (profile.multi_process()) frames.push_back(profile.process_label(profile.tasks()[s.task].pid));
        frames.emplace_back("tasks (suspended)");
        // The awaiting tasks as they were when it was last seen waiting there.
        std::vector<std::string> prefix = tasks.async_prefix(s.task, profile.info.end);
        frames.insert(frames.end(), prefix.begin(), prefix.end());
        for (FrameId f : profile.stack(s.stack)) frames.push_back(profile.format_frame(f));
        merged_ns[std::move(frames)] += s.time.value;
    }
    std::vector<WeightedStack> out;
    for (auto& [frames, ns] : merged_ns) {
        if (ns >= 1000) out.push_back({frames, static_cast<std::uint64_t>(ns / 1000)});
    }
    return out;
}

}  // namespace loopspy
