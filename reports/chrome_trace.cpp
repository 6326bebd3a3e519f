#include "reports/chrome_trace.hpp"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "reports/flame_modes.hpp"
#include "reports/thread_frames.hpp"
#include "reports/timeline.hpp"

namespace loopspy {

namespace {

using Json = nlohmann::ordered_json;

class Trace {
public:
    explicit Trace(Nanoseconds origin) : origin_(origin) {}

    double us(Nanoseconds t) const { return static_cast<double>((t - origin_).value) / 1000.0; }

    void slice(Pid pid, Tid tid, std::string name, const char* cat, Nanoseconds start, Nanoseconds end,
               Json args = nullptr) {
        if (end < start) return;
        Json e{{"name", std::move(name)}, {"cat", cat}, {"ph", "X"}, {"ts", us(start)},
               {"dur", static_cast<double>((end - start).value) / 1000.0}, {"pid", pid.value}, {"tid", tid.value}};
        if (!args.is_null()) e["args"] = std::move(args);
        events_.push_back(std::move(e));
    }
    void instant(Pid pid, Tid tid, std::string name, const char* cat, Nanoseconds at, Json args) {
        events_.push_back(Json{{"name", std::move(name)}, {"cat", cat}, {"ph", "i"}, {"s", "t"}, {"ts", us(at)},
                               {"pid", pid.value}, {"tid", tid.value}, {"args", std::move(args)}});
    }
    void name_process(Pid pid, const std::string& name) {
        events_.push_back(Json{{"name", "process_name"}, {"ph", "M"}, {"pid", pid.value}, {"args", {{"name", name}}}});
    }
    void name_thread(Pid pid, Tid tid, const std::string& name, int sort_index) {
        events_.push_back(Json{{"name", "thread_name"}, {"ph", "M"}, {"pid", pid.value}, {"tid", tid.value},
                               {"args", {{"name", name}}}});
        events_.push_back(Json{{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", pid.value}, {"tid", tid.value},
                               {"args", {{"sort_index", sort_index}}}});
    }
    Json take() { return std::move(events_); }

private:
    Nanoseconds origin_;
    Json events_ = Json::array();
};

double ms(Nanoseconds d) { return static_cast<double>(d.value) / 1e6; }

/// "handler" from "handler (file.py:12)".
std::string short_name(const std::string& frame) {
    const std::size_t paren = frame.rfind(" (");
    return paren == std::string::npos || frame.back() != ')' ? frame : frame.substr(0, paren);
}

}  // namespace

std::string render_chrome_trace(const Profile& profile, const LoopAnalysis& analysis, const AnalysisFilter& filter,
                                const TaskAttribution* tasks, const CulpritRules& culprit) {
    Trace trace(profile.info.start);
    const TimeWindow& window = analysis.window;
    std::set<Pid> pids;
    std::set<Tid> loops(analysis.loop_threads.begin(), analysis.loop_threads.end());
    int sort = 0;
    for (Tid tid : analysis.loop_threads) {
        const Pid pid = profile.process_of(tid);
        pids.insert(pid);
        trace.name_thread(pid, tid, "loop: " + thread_root_frame(profile, tid), sort++);
        for (const SelectorWait* w : waits_of(profile, tid)) {
            if (!window.overlaps(w->previous_leave.value ? w->previous_leave : w->enter, w->leave)) continue;
            if (w->folded_waits > 0) {
                const Nanoseconds end = w->previous_leave.value ? w->previous_leave : w->enter;
                const Nanoseconds begin = end - (w->folded_wait_time + w->folded_busy_time);
                trace.slice(pid, tid, std::to_string(w->folded_waits) + " short iterations", "loop", begin, end,
                            Json{{"iterations", w->folded_waits},
                                 {"idle_ms", ms(w->folded_wait_time)},
                                 {"busy_ms", ms(w->folded_busy_time)}});
            }
            if (w->previous_leave.value != 0 && w->previous_leave <= w->enter) {
                trace.slice(pid, tid, "iteration", "loop", w->previous_leave, w->enter);
            }
            trace.slice(pid, tid, "idle", "idle", w->enter, w->leave);
        }
    }
    // Every callback: the same split as the slow callbacks', at no threshold.
    const std::vector<SlowCallback> callbacks =
        find_slow_callbacks(profile, analysis.loop_threads, Nanoseconds{1}, window, CallbackOrder::Time, tasks, culprit);
    for (const SlowCallback& cb : callbacks) {
        const Pid pid = profile.process_of(cb.thread);
        const bool slow = cb.duration >= analysis.threshold;
        std::string name = short_name(cb.callback);
        if (cb.task) name += " [task " + *cb.task + "]";
        Json args{{"callback", cb.callback},
                  {"task", cb.task ? Json(*cb.task) : Json(nullptr)},
                  {"duration_ms", ms(cb.duration)},
                  {"on_cpu_ms", ms(cb.on_cpu)},
                  {"off_cpu_ms", ms(cb.off_cpu)},
                  {"culprit", cb.culprit ? Json(*cb.culprit) : Json(nullptr)},
                  {"slow", slow},
                  {"stack", cb.stack}};
        trace.slice(pid, cb.thread, name, slow ? "callback,slow" : "callback", cb.start, cb.start + cb.duration, args);
        if (slow) trace.instant(pid, cb.thread, "slow callback", "slow", cb.start, Json{{"callback", name}});
        for (const BlockingInterval& b : cb.blocking) {
            trace.slice(pid, cb.thread, b.reason, "blocking", b.start, b.start + b.duration, Json{{"stack", b.stack}});
        }
    }
    // The other threads' on-CPU time.
    for (const auto& [tid, spans] : thread_timelines(profile, FlameMode::Cpu, analysis.loop_threads, filter)) {
        if (loops.count(tid)) continue;
        const Pid pid = profile.process_of(tid);
        pids.insert(pid);
        trace.name_thread(pid, tid, thread_root_frame(profile, tid), sort++);
        for (std::size_t i = 0; i < spans.size();) {
            std::size_t j = i + 1;
            while (j < spans.size() && spans[j].stack == spans[i].stack && spans[j].start == spans[j - 1].end) ++j;
            auto frames = profile.stack(spans[i].stack);
            std::vector<std::string> stack;
            for (FrameId f : frames) stack.push_back(profile.format_frame(f));
            std::string name = frames.empty() ? "<no frames>" : std::string(profile.string(profile.frame(frames.back()).name));
            trace.slice(pid, tid, std::move(name), "on-cpu", spans[i].start, spans[j - 1].end, Json{{"stack", stack}});
            i = j;
        }
    }
    for (Pid pid : pids) {
        auto rec = profile.processes().find(pid);
        const std::string command = rec != profile.processes().end() ? rec->second.command : profile.info.target_command;
        trace.name_process(pid, "pid " + std::to_string(pid.value) + (command.empty() ? "" : ": " + command));
    }
    Json doc{{"traceEvents", trace.take()},
             {"displayTimeUnit", "ms"},
             {"otherData",
              {{"tool", "loopspy " + profile.info.tool_version},
               {"target", profile.info.target_command},
               {"threshold_ms", ms(analysis.threshold)},
               {"time_origin", "microseconds since the recording started"}}}};
    return doc.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace loopspy
