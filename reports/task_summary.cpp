#include "reports/task_summary.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include "reports/collapsed.hpp"
#include "reports/json_report.hpp"
#include "reports/text.hpp"

namespace loopspy {

std::vector<TaskSummary> summarize_tasks(const Profile& profile, const TaskAttribution& tasks, const TimeWindow& window) {
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
        std::vector<std::string> stack;
        for (FrameId f : profile.stack(s.stack)) stack.push_back(profile.format_frame(f));
        t.waits.push_back({std::move(stack), s.time});
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
