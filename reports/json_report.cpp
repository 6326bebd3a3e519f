#include "reports/json_report.hpp"

#include <map>
#include <cmath>
#include <cstdio>
#include <limits>

#include "reports/collapsed.hpp"
#include "reports/text.hpp"

namespace loopspy {

namespace {

using Json = nlohmann::ordered_json;

Json string_list(const std::vector<std::string>& items) {
    Json out = Json::array();
    for (const auto& s : items) out.push_back(sanitize_utf8(s));
    return out;
}

/// A thread that held the GIL while a loop thread waited for it: {tid, thread (its name), ms}.
Json gil_holder_json(const Profile& profile, Tid tid, Nanoseconds waited) {
    return Json{{"tid", tid.value}, {"thread", sanitize_utf8(profile.thread_name(tid))}, {"ms", rounded_ms(waited)}};
}

Json stats_json(const LoopStats& st) {
    Json j;
    j["iterations"] = st.iterations;
    j["busy_ms"] = rounded_ms(st.busy);
    j["idle_ms"] = rounded_ms(st.idle);
    return j;
}

std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

/// The document's text: strings are sanitized where they are set; `replace` is a second guard so
/// a stray byte never throws.
std::string document_text(const Json& j) { return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n"; }

Json frames_json(const std::vector<DumpFrame>& frames) {
    Json a = Json::array();
    for (const DumpFrame& f : frames) {
        Json j;
        j["name"] = sanitize_utf8(f.name);
        j["file"] = sanitize_utf8(f.file);
        j["line"] = f.line;
        j["coroutine"] = f.coroutine;
        a.push_back(std::move(j));
    }
    return a;
}


}  // namespace

double rounded_ms(Nanoseconds ns) {
    // Whole microseconds first (exact in integers), then one division: 1234567 ns -> 1.235.
    const std::int64_t us = ns.value >= 0 ? (ns.value + 500) / 1000 : -((-ns.value + 500) / 1000);
    const double ms = static_cast<double>(us) / 1000.0;
    return ms == 0.0 ? 0.0 : ms;  // never -0
}

Json loop_report_json(const Profile& profile, const LoopAnalysis& a) {
    const Nanoseconds origin = profile.info.start;
    Json j;
    j["python_version"] = profile.info.python.text();
    j["pid"] = profile.info.pid.value;
    Nanoseconds span = a.window.end > a.window.begin ? a.window.end - a.window.begin : Nanoseconds{0};
    if (a.window.end.value == std::numeric_limits<std::int64_t>::max()) span = Nanoseconds{0};  // no known end
    j["duration_s"] = static_cast<double>((span.value + 500'000) / 1'000'000) / 1000.0;  // whole ms, in seconds
    j["samples"] = {{"on_cpu", a.samples.on_cpu}, {"off_cpu", a.samples.off_cpu}, {"lost", a.samples.lost}};
    // The rate over the whole recording: the samples the kernel delivered per second of the
    // target's CPU time (null when the recording does not know that time).
    std::uint64_t recorded = 0;
    for (const SampleRecord& s : profile.samples()) recorded += s.kind == SampleKind::OnCpu;
    const double achieved = profile.lost.achieved_hz(recorded);
    j["rate"] = {{"requested_hz", profile.info.rate_hz},
                 {"achieved_hz", achieved > 0 || profile.lost.target_cpu_ns > 0 ? Json(std::round(achieved * 10) / 10) : Json(nullptr)}};
    Json loops = Json::array();
    for (Tid t : a.loop_threads) loops.push_back(t.value);
    j["loop_threads"] = std::move(loops);

    Json slow = Json::array();
    for (const SlowCallback& cb : a.slow_callbacks) {
        Json c;
        c["start_ms"] = rounded_ms(cb.start - origin);
        c["duration_ms"] = rounded_ms(cb.duration);
        c["on_cpu_ms"] = rounded_ms(cb.on_cpu);
        c["off_cpu_ms"] = rounded_ms(cb.off_cpu);
        c["callback"] = sanitize_utf8(cb.callback);
        c["task"] = cb.task ? Json(sanitize_utf8(*cb.task)) : Json(nullptr);
        c["culprit"] = cb.culprit ? Json(sanitize_utf8(*cb.culprit)) : Json(nullptr);
        c["thread"] = cb.thread.value;
        c["pid"] = profile.process_of(cb.thread).value;
        c["stack"] = string_list(cb.stack);
        Json blocking = Json::array();
        for (const BlockingInterval& b : cb.blocking) {
            Json bj;
            bj["syscall"] = sanitize_utf8(b.reason);
            bj["gil"] = b.gil;
            bj["gil_holder"] = b.gil_holder.value ? gil_holder_json(profile, b.gil_holder, b.duration) : Json(nullptr);
            bj["duration_ms"] = rounded_ms(b.duration);
            bj["stack"] = string_list(b.stack);
            blocking.push_back(std::move(bj));
        }
        c["blocking"] = std::move(blocking);
        slow.push_back(std::move(c));
    }
    j["slow_callbacks"] = std::move(slow);
    // With no slow callback, the longest there was (null otherwise, or when none ran).
    if (a.slow_callbacks.empty() && a.longest_callback) {
        const SlowCallback& cb = *a.longest_callback;
        j["longest_callback"] = Json{{"start_ms", rounded_ms(cb.start - origin)},
                                     {"duration_ms", rounded_ms(cb.duration)},
                                     {"callback", sanitize_utf8(cb.callback)},
                                     {"task", cb.task ? Json(sanitize_utf8(*cb.task)) : Json(nullptr)},
                                     {"culprit", cb.culprit ? Json(sanitize_utf8(*cb.culprit)) : Json(nullptr)},
                                     {"thread", cb.thread.value}};
    } else {
        j["longest_callback"] = nullptr;
    }

    Json calls = Json::array();
    for (const BlockingCall& b : a.blocking_calls) {
        Json bj;
        bj["pid"] = b.pid.value;
        bj["stack"] = string_list(b.stack);
        bj["syscall"] = sanitize_utf8(b.reason);
        bj["gil"] = b.gil;
        Json holders = Json::array();
        for (const GilHolder& h : b.gil_holders) holders.push_back(gil_holder_json(profile, h.thread, h.time));
        bj["gil_holders"] = std::move(holders);
        bj["culprit"] = b.culprit ? Json(sanitize_utf8(*b.culprit)) : Json(nullptr);
        bj["count"] = b.count;
        bj["total_ms"] = rounded_ms(b.total);
        bj["max_ms"] = rounded_ms(b.max);
        bj["p50_ms"] = rounded_ms(b.p50);
        bj["p99_ms"] = rounded_ms(b.p99);
        calls.push_back(std::move(bj));
    }
    j["blocking_calls"] = std::move(calls);

    Json loop = stats_json(a.total);
    Json per_thread = Json::array();
    // Each process's loops, summed: the per-process loop summary.
    std::map<Pid, LoopStats> per_process;
    std::map<Pid, Json> process_loops;
    for (const LoopStats& st : a.per_thread) {
        Json t;
        t["thread"] = st.thread.value;
        const Pid pid = profile.process_of(st.thread);
        t["pid"] = pid.value;
        t.update(stats_json(st));
        per_thread.push_back(std::move(t));
        LoopStats& sum = per_process[pid];
        sum.iterations += st.iterations;
        sum.busy += st.busy;
        sum.idle += st.idle;
        process_loops[pid].push_back(st.thread.value);
    }
    loop["per_thread"] = std::move(per_thread);
    j["loop"] = std::move(loop);
    // Every recorded process (the target alone, unless recorded with --subprocesses).
    Json processes = Json::array();
    auto add_process = [&](Pid pid, const std::string& command, const PythonVersion& python) {
        Json x;
        x["pid"] = pid.value;
        x["command"] = sanitize_utf8(command);
        x["python_version"] = python.text();
        auto loops_of = process_loops.find(pid);
        x["loop_threads"] = loops_of == process_loops.end() ? Json::array() : loops_of->second;
        auto sum = per_process.find(pid);
        x["loop"] = stats_json(sum == per_process.end() ? LoopStats{} : sum->second);
        processes.push_back(std::move(x));
    };
    if (profile.processes().empty()) {
        add_process(profile.info.pid, profile.info.target_command, profile.info.python);
    } else {
        for (const auto& [pid, rec] : profile.processes()) add_process(pid, rec.command, rec.python);
    }
    j["processes"] = std::move(processes);
    return j;
}

std::string render_json_report(const Profile& profile, const LoopAnalysis& analysis,
                               const std::vector<TaskSummary>* tasks) {
    Json j = loop_report_json(profile, analysis);
    if (tasks) j["tasks"] = tasks_json(*tasks);
    return document_text(j);
}

Json tasks_json(const std::vector<TaskSummary>& tasks) {
    Json a = Json::array();
    for (const TaskSummary& t : tasks) {
        Json j;
        j["name"] = sanitize_utf8(t.name);
        j["id"] = hex(t.id);
        j["pid"] = t.pid.value;
        j["running_ms"] = rounded_ms(t.running);
        j["suspended_ms"] = rounded_ms(t.suspended);
        Json waits = Json::array();
        for (const TaskWait& w : t.waits) {
            Json x;
            x["stack"] = string_list(w.stack);
            x["where"] = string_list(w.where);
            x["culprit"] = w.culprit ? Json(sanitize_utf8(*w.culprit)) : Json(nullptr);
            x["ms"] = rounded_ms(w.time);
            waits.push_back(std::move(x));
        }
        j["waits"] = std::move(waits);
        a.push_back(std::move(j));
    }
    return a;
}

namespace {
Json dump_json(const ProcessDump& d);
}  // namespace

std::string render_dump_json(const ProcessDump& d) {
    return document_text(dump_json(d));
}

std::string render_dumps_json(const std::vector<ProcessDump>& dumps) {
    Json a = Json::array();
    for (const ProcessDump& d : dumps) a.push_back(dump_json(d));
    return document_text(a);
}

namespace {
Json dump_json(const ProcessDump& d) {
    Json j;
    j["pid"] = d.pid.value;
    j["command"] = sanitize_utf8(d.command);
    j["python"] = d.python.text();
    j["python_binary"] = sanitize_utf8(d.python_binary);
    Json th = Json::array();
    for (const DumpThread& t : d.threads) {
        Json x;
        x["tid"] = t.tid.value;
        x["name"] = sanitize_utf8(t.name);
        const DumpTask* running = d.task_running_on(t.tid);
        x["task"] = running ? Json(sanitize_utf8(running->name)) : Json(nullptr);
        x["truncated"] = t.truncated;
        x["frames"] = frames_json(t.frames);
        th.push_back(std::move(x));
    }
    j["threads"] = std::move(th);
    Json ta = Json::array();
    for (const DumpTask& t : d.tasks) {
        Json x;
        x["id"] = hex(t.addr);
        x["name"] = sanitize_utf8(t.name);
        x["state"] = t.state;
        x["thread"] = t.thread ? Json(t.thread->value) : Json(nullptr);
        x["coroutine_stack"] = frames_json(t.stack);
        x["awaiting"] = t.awaiting.empty() ? Json(nullptr) : Json(sanitize_utf8(t.awaiting));
        Json by = Json::array();
        for (std::uint64_t a : t.awaited_by) by.push_back(hex(a));
        x["awaited_by"] = std::move(by);
        ta.push_back(std::move(x));
    }
    j["tasks"] = std::move(ta);
    return j;
}
}  // namespace

}  // namespace loopspy
