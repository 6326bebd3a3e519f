#include "reports/task_summary.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include "reports/collapsed.hpp"
#include "reports/stacks.hpp"
#include "reports/json_report.hpp"
#include "reports/text.hpp"

namespace loopspy {

namespace {

std::vector<std::string> wait_site(const Profile& profile, StackId stack, std::optional<FrameId> own) {
    const std::span<const FrameId> frames = profile.stack(stack);
    std::vector<FrameId> kept;
    const bool leaf = !frames.empty() && (profile.frame(frames.back()).flags & kFrameSpecial);
    const std::size_t coroutines = frames.size() - (leaf ? 1 : 0);
    if (own) {
        // Down to the last occurrence of the own frame, and the one call below it.
        std::size_t last = 0;
        for (std::size_t i = 0; i < coroutines; ++i) {
            if (frames[i] == *own) last = i;
        }
        kept.assign(frames.begin(), frames.begin() + static_cast<std::ptrdiff_t>(std::min(last + 2, coroutines)));
    } else if (coroutines > 0) {
        kept.push_back(frames[coroutines - 1]);  // no code of its own: the innermost coroutine
    }
    if (leaf) kept.push_back(frames.back());
    return folded(kept, [&](FrameId f) { return profile.format_frame(f); });
}

}  // namespace

std::vector<TaskSummary> summarize_tasks(const Profile& profile, const TaskAttribution& tasks, const TimeWindow& window,
                                         const CulpritRules& culprit) {
    std::map<TaskId, TaskSummary> by_task;
    auto summary = [&](TaskId id) -> TaskSummary& {
        auto [it, fresh] = by_task.try_emplace(id);
        if (fresh) {
            it->second.name = std::string(tasks.name(id));
            it->second.id = profile.tasks()[id].addr;
            it->second.pid = profile.tasks()[id].pid;
        }
        return it->second;
    };
    const auto& samples = profile.samples();
    for (std::size_t i = 0; i < samples.size(); ++i) {
        auto id = tasks.task_of(i);
        if (!id) continue;
        const SampleRecord& s = samples[i];
        if (s.kind == SampleKind::OnCpu) {
            if (window.contains(s.time)) summary(*id).running += s.weight;
        } else {
            summary(*id).running += window.overlap(s.time, s.time + s.weight);
        }
    }
    for (const TaskAttribution::Suspension& s : tasks.suspensions(window.begin, window.end)) {
        TaskSummary& t = summary(s.task);
        t.suspended += s.time;
        TaskWait w;
        for (FrameId f : profile.stack(s.stack)) w.stack.push_back(profile.format_frame(f));
        std::optional<FrameId> own = culprit_frame(profile, s.stack, culprit);
        if (own) w.culprit = profile.format_frame(*own);
        w.where = wait_site(profile, s.stack, own);
        w.time = s.time;
        t.waits.push_back(std::move(w));
    }
    std::vector<TaskSummary> out;
    for (auto& [id, t] : by_task) {
        std::stable_sort(t.waits.begin(), t.waits.end(), [](const TaskWait& a, const TaskWait& b) { return a.time > b.time; });
        out.push_back(std::move(t));
    }
    std::stable_sort(out.begin(), out.end(), [](const TaskSummary& a, const TaskSummary& b) {
        return a.running + a.suspended > b.running + b.suspended;
    });
    return out;
}



}  // namespace loopspy
