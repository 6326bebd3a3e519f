#include "reports/task_report.hpp"

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

std::string render_tasks_table(const std::vector<TaskSummary>& tasks, std::size_t limit) {
    std::string out;
    char line[512];
    std::snprintf(line, sizeof line, "Tasks: %zu seen%s\n", tasks.size(),
                  tasks.size() > limit ? (", the " + std::to_string(limit) + " longest shown").c_str() : "");
    out += line;
    if (tasks.empty()) return out;
    std::snprintf(line, sizeof line, "%12s %12s  %s\n", "running ms", "waiting ms", "task / waits on");
    out += line;
    for (std::size_t i = 0; i < tasks.size() && i < limit; ++i) {
        const TaskSummary& t = tasks[i];
        std::snprintf(line, sizeof line, "%12.1f %12.1f  %s\n", t.running.ms(), t.suspended.ms(), sanitize_utf8(t.name).c_str());
        out += line;
        for (std::size_t w = 0; w < t.waits.size() && w < 3; ++w) {
            const TaskWait& wait = t.waits[w];
            // The innermost coroutine frame and what it awaits say where it waits.
            std::string where;
            for (std::size_t k = wait.stack.size() >= 2 ? wait.stack.size() - 2 : 0; k < wait.stack.size(); ++k) {
                if (!where.empty()) where += " -> ";
                where += wait.stack[k];
            }
            std::snprintf(line, sizeof line, "%12s %12.1f    %s\n", "", wait.time.ms(), sanitize_utf8(where).c_str());
            out += line;
        }
    }
    return out;
}

nlohmann::ordered_json tasks_json(const std::vector<TaskSummary>& tasks) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (const TaskSummary& t : tasks) {
        nlohmann::ordered_json j;
        j["name"] = sanitize_utf8(t.name);
        char id[24];
        std::snprintf(id, sizeof id, "0x%llx", static_cast<unsigned long long>(t.id));
        j["id"] = id;
        j["running_ms"] = rounded_ms(t.running);
        j["suspended_ms"] = rounded_ms(t.suspended);
        nlohmann::ordered_json waits = nlohmann::ordered_json::array();
        for (const TaskWait& w : t.waits) {
            nlohmann::ordered_json x;
            nlohmann::ordered_json stack = nlohmann::ordered_json::array();
            for (const auto& f : w.stack) stack.push_back(sanitize_utf8(f));
            x["stack"] = std::move(stack);
            x["ms"] = rounded_ms(w.time);
            waits.push_back(std::move(x));
        }
        j["waits"] = std::move(waits);
        a.push_back(std::move(j));
    }
    return a;
}

}  // namespace loopspy
