#include "reports/outputs.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "core/output_files.hpp"
#include "reports/chrome_trace.hpp"
#include "reports/collapsed.hpp"
#include "reports/flame_modes.hpp"
#include "reports/flamegraph.hpp"
#include "reports/json_report.hpp"
#include "reports/loop_analysis.hpp"
#include "reports/pprof.hpp"
#include "reports/speedscope.hpp"
#include "reports/text_tables.hpp"
#include "reports/task_attribution.hpp"
#include "reports/task_summary.hpp"

namespace loopspy {

bool names_recording(const std::string& file) { return file.ends_with(".lspy"); }

std::string short_command(const std::string& command, std::size_t max_chars) {
    // The interpreter's directory says little and takes the room: its base name stays.
    std::string first = command.substr(0, command.find(' '));
    const std::string rest = first.size() < command.size() ? command.substr(first.size()) : std::string();
    if (const std::size_t slash = first.rfind('/'); slash != std::string::npos) first = first.substr(slash + 1);
    std::string out = first + rest;
    if (out.size() <= max_chars) return out;
    std::size_t cut = max_chars - 1;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
    return out.substr(0, cut) + "\u2026";
}

namespace {

bool ends_with_any(const std::string& file, std::initializer_list<std::string_view> suffixes) {
    for (std::string_view s : suffixes) {
        if (file.ends_with(s)) return true;
    }
    return false;
}

}  // namespace

/// -o FILE with -f FORMAT, or with the format its extension names (py-spy's habit).
Result<void> route_output(OutputArgs& a) {
    if (a.output.empty()) {
        if (!a.format.empty()) return make_error(ErrorKind::BadInput, "-f/--format names the format of -o FILE: give -o too");
        return {};
    }
    std::string format = a.format;
    if (format.empty()) {
        const std::string& f = a.output;
        if (ends_with_any(f, {".svg", ".html"})) format = "flamegraph";
        else if (ends_with_any(f, {".txt", ".collapsed", ".folded"})) format = "collapsed";
        else if (ends_with_any(f, {".pb.gz", ".pprof", ".pb"})) format = "pprof";
        else if (ends_with_any(f, {".trace.json"})) format = "chrometrace";
        else if (ends_with_any(f, {".json"})) format = "speedscope";
        else if (f == kStdoutPath) format = "collapsed";  // text on stdout, for a pipe
        else if (struct stat st {}; ::stat(f.c_str(), &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
            format = "flamegraph";  // /dev/null, a FIFO: py-spy's default format
        } else {
            return make_error(ErrorKind::BadInput, "-o " + f + ": no format goes by this name's extension: give -f FORMAT (" +
                                                       std::string(kOutputFormats) + "), or name a .lspy recording");
        }
    }
    if (format == "flamegraph") a.flamegraph = a.output;
    else if (format == "collapsed" || format == "raw") a.collapsed = a.output;
    else if (format == "speedscope") a.speedscope = a.output;
    else if (format == "pprof") a.pprof = a.output;
    else if (format == "chrometrace") a.trace = a.output;
    else return make_error(ErrorKind::BadInput, "-f " + format + ": not a format (" + std::string(kOutputFormats) + ")");
    return {};
}

Result<void> validate_outputs(const OutputArgs& a) {
    for (auto sec : {a.from_s, a.to_s}) {
        if (sec && (!std::isfinite(*sec) || *sec < 0)) {
            return make_error(ErrorKind::BadInput, "--from and --to take a non-negative number of seconds");
        }
    }
    if (a.from_s && a.to_s && *a.from_s >= *a.to_s) {
        return make_error(ErrorKind::BadInput, "--from must be before --to");
    }
    if (!std::isfinite(a.threshold_ms) || a.threshold_ms < 0) {
        return make_error(ErrorKind::BadInput, "--threshold must be a non-negative number of milliseconds");
    }
    return {};
}

Result<void> check_output_files(const OutputArgs& a) {
    int to_stdout = a.slow_callbacks || a.tasks ? 1 : 0;
    for (const std::string* file : a.files()) {
        if (file->empty()) continue;
        LOOPSPY_CHECK(check_output_path(*file, a.force));
        if (*file == kStdoutPath && ++to_stdout > 1) {
            return make_error(ErrorKind::BadInput, "only one output can go to stdout (-)");
        }
    }
    if (a.pprof == kStdoutPath && ::isatty(STDOUT_FILENO)) {
        return make_error(ErrorKind::BadInput, "a pprof profile is gzipped binary: not written to a terminal (give a file)");
    }
    return {};
}

LoopAnalysisOptions analysis_options(const OutputArgs& args) {
    LoopAnalysisOptions lo;
    lo.threshold = Nanoseconds{std::llround(args.threshold_ms * 1e6)};
    lo.order = args.sort == "time" ? CallbackOrder::Time : CallbackOrder::Duration;
    if (args.loop_thread) lo.loop_thread = Tid{*args.loop_thread};
    lo.culprit.include = args.culprit_include;
    lo.culprit.exclude = args.culprit_exclude;
    lo.filter.from_s = args.from_s;
    lo.filter.to_s = args.to_s;
    for (int t : args.threads) lo.filter.threads.push_back(Tid{t});
    return lo;
}

Result<void> write_outputs(const Profile& profile, const OutputArgs& args, const std::string& default_flamegraph) {
    if (args.loop_thread && !profile.threads().count(Tid{*args.loop_thread})) {
        std::string known;
        for (const auto& [tid, name] : profile.threads()) {
            if (known.size() > 200) {
                known += ", ...";
                break;
            }
            known += (known.empty() ? "" : ", ") + std::to_string(tid.value);
        }
        return make_error(ErrorKind::BadInput, "--loop-thread " + std::to_string(*args.loop_thread) +
                                                   ": the recording has no such thread (it has " +
                                                   (known.empty() ? std::string("none") : known) + ")");
    }
    LoopAnalysisOptions lo = analysis_options(args);
    const TaskAttribution tasks(profile);
    LoopAnalysis analysis = analyze_loops(profile, lo, &tasks);
    if ((args.async || args.tasks || !args.tasks_flamegraph.empty() || !args.tasks_collapsed.empty()) && !tasks.has_tasks()) {
        std::fprintf(stderr, "loopspy: no task snapshots in this recording (recorded with --task-rate 0, or in recording "
                             "format 1.0): stacks stay physical and no task is named\n");
    }

    FlameMode mode = parse_flame_mode(args.mode).value_or(FlameMode::Busy);
    std::string svg = args.any() ? args.flamegraph : default_flamegraph;
    if (!args.collapsed.empty() || !svg.empty()) {
        auto stacks = mode_stacks(profile, mode, analysis.loop_threads, lo.filter, args.async ? &tasks : nullptr,
                                  args.function);
        if (!args.collapsed.empty()) {
            LOOPSPY_CHECK(write_file_atomically(args.collapsed, render_collapsed(stacks), args.force));
            std::fprintf(stderr, "loopspy: wrote collapsed stacks to %s\n", args.collapsed.c_str());
        }
        if (!svg.empty()) {
            FlameGraphOptions fo;
            const ProfileInfo& info = profile.info;
            const std::string whole = info.target_command.empty() ? "pid " + std::to_string(info.pid.value)
                                                                   : info.target_command;
            fo.title = "loopspy: " + short_command(whole);
            fo.title_tooltip = "loopspy: " + whole;
            char sub[256];
            std::snprintf(sub, sizeof(sub), "pid %d, Python %s, %d Hz, %.1f s, mode %s", info.pid.value,
                          info.python.text().c_str(), info.rate_hz, (info.end - info.start).seconds(),
                          std::string(flame_mode_name(mode)).c_str());
            fo.subtitle = std::string(sub) + (args.async ? ", by task" : "");
            fo.count_name = mode == FlameMode::Cpu ? "on-CPU time" : mode == FlameMode::Busy ? "busy time" : "wall time";
            LOOPSPY_CHECK(write_file_atomically(svg, render_flamegraph(stacks, fo), args.force));
            std::fprintf(stderr, "loopspy: wrote flame graph to %s\n", svg.c_str());
        }
    }
    if (!args.speedscope.empty()) {
        LOOPSPY_CHECK(write_file_atomically(args.speedscope, render_speedscope(profile, mode, analysis.loop_threads, lo.filter), args.force));
        std::fprintf(stderr, "loopspy: wrote speedscope profile to %s\n", args.speedscope.c_str());
    }
    if (!args.pprof.empty()) {
        LOOPSPY_TRY(std::string gz, gzip(encode_pprof(profile, analysis.loop_threads, lo.filter, &tasks)));
        LOOPSPY_CHECK(write_file_atomically(args.pprof, gz, args.force));
        std::fprintf(stderr, "loopspy: wrote pprof profile to %s\n", args.pprof.c_str());
    }
    if (!args.trace.empty()) {
        LOOPSPY_CHECK(write_file_atomically(args.trace, render_chrome_trace(profile, analysis, lo.filter, &tasks, lo.culprit), args.force));
        std::fprintf(stderr, "loopspy: wrote loop timeline (Chrome trace) to %s\n", args.trace.c_str());
    }
    std::vector<TaskSummary> summaries;
    if (args.tasks) summaries = summarize_tasks(profile, tasks, analysis.window, lo.culprit);
    if (!args.tasks_flamegraph.empty() || !args.tasks_collapsed.empty()) {
        auto stacks = task_wait_stacks(profile, tasks, lo.filter);
        if (!args.tasks_collapsed.empty()) {
            LOOPSPY_CHECK(write_file_atomically(args.tasks_collapsed, render_collapsed(stacks), args.force));
            std::fprintf(stderr, "loopspy: wrote task waits (collapsed) to %s\n", args.tasks_collapsed.c_str());
        }
        if (!args.tasks_flamegraph.empty()) {
            FlameGraphOptions fo;
            fo.title = "loopspy: where tasks waited";
            fo.subtitle = "pid " + std::to_string(profile.info.pid.value) + ", wall time of suspended tasks";
            fo.count_name = "waiting time";
            LOOPSPY_CHECK(write_file_atomically(args.tasks_flamegraph, render_flamegraph(stacks, fo), args.force));
            std::fprintf(stderr, "loopspy: wrote task waits flame graph to %s\n", args.tasks_flamegraph.c_str());
        }
    }
    if (!args.report.empty()) {
        const std::string text = render_json_report(profile, analysis, args.tasks ? &summaries : nullptr);
        LOOPSPY_CHECK(write_file_atomically(args.report, text, args.force));
        std::fprintf(stderr, "loopspy: wrote report to %s\n", args.report.c_str());
    }
    if (args.slow_callbacks) {
        SlowCallbackTableOptions table;
        table.group = !args.no_group;
        std::fputs(render_slow_callbacks_table(profile, analysis, table).c_str(), stdout);
        std::fflush(stdout);
    }
    if (args.tasks) {
        if (!tasks.has_tasks()) std::fputs("Tasks: none recorded (no asyncio tasks, or --task-rate 0)\n", stdout);
        else std::fputs(render_tasks_table(summaries).c_str(), stdout);
        std::fflush(stdout);
    }
    return {};
}

}  // namespace loopspy
