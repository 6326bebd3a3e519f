#include "cli/record_command.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <thread>

#include "cli/launch.hpp"
#include "bpf/kernel_features.hpp"
#include "cli/preflight.hpp"
#include "cli/top_view.hpp"
#include "core/output_files.hpp"
#include "session/recorder.hpp"
#include "core/memory.hpp"
#include "recording/format.hpp"
#include "symbolizer/process/proc_maps.hpp"

namespace loopspy {
namespace {

// The live status line on a terminal: one line on stderr, rewritten in place.
void print_status_line(const RecorderStatus& st, bool final) {
    std::fprintf(stderr, "\r\033[Kloopspy: recording pid %d  %.1fs  %llu samples  %llu lost  %zu threads%s",
                 st.pid.value, st.elapsed.seconds(), static_cast<unsigned long long>(st.samples),
                 static_cast<unsigned long long>(st.lost), st.threads, final ? "\n" : "");
    std::fflush(stderr);
}

std::atomic<bool> g_stop{false};

void on_stop_signal(int) { g_stop.store(true); }

void install_stop_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocking poll returns at once
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
}

std::string kernel_release() {
    utsname u{};
    if (::uname(&u) != 0) return {};
    return std::string(u.sysname) + " " + u.release;
}

std::string timestamp_for_file_name() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    ::localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);
    return buf;
}

/// Waits for a freshly launched command's interpreter to be mapped. Polls, because the dynamic
/// loader maps libpython after exec returns.
Result<Interpreter> wait_for_interpreter(Child& child, const RemoteMemory& memory) {
    using Clock = std::chrono::steady_clock;
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (true) {
        auto interp = find_interpreter(child.pid(), memory);
        if (interp) return interp;
        ErrorKind kind = interp.error().kind;
        if (kind == ErrorKind::UnsupportedPython || kind == ErrorKind::NoPrivilege) return interp.error();
        if (child.exited()) {
            return make_error(ErrorKind::NotPython, "the command " + child.describe_exit() +
                                                        " before a Python interpreter could be found in it");
        }
        if (Clock::now() > deadline || g_stop.load()) return interp.error();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

std::string percent(std::uint64_t part, std::uint64_t whole) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f%%", whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 100.0);
    return buf;
}

/// Checks the arguments; with --pid, resolves the process it names (once: a thread id names its
/// process, a zombie is refused).
Result<std::optional<TargetProcess>> validate(const RecordArgs& args) {
    if (args.pid && !args.command.empty()) {
        return make_error(ErrorKind::BadInput, "give either --pid or a command after --, not both");
    }
    if (!args.pid && args.command.empty()) {
        return make_error(ErrorKind::BadInput, "nothing to record: give --pid PID or a command after --");
    }
    if (args.duration_s < 0 || !std::isfinite(args.duration_s)) {
        return make_error(ErrorKind::BadInput, "--duration must be a positive number of seconds");
    }
    LOOPSPY_CHECK(validate_outputs(args.outputs));
    if (args.recording == kStdoutPath) {
        return make_error(ErrorKind::BadInput, "the recording is a file (it is written as it grows and read back): give a path, not -");
    }
    if (!std::isfinite(args.task_rate_hz) || args.task_rate_hz < 0 || args.task_rate_hz > 1000) {
        return make_error(ErrorKind::BadInput, "--task-rate must be between 0 and 1000 snapshots per second");
    }
    if (!args.pid) return std::optional<TargetProcess>();
    LOOPSPY_TRY(TargetProcess given, target_process(Pid{*args.pid}));
    if (const auto& loop = args.outputs.loop_thread; loop && !args.subprocesses) {
        struct stat st {};
        const std::string task = "/proc/" + std::to_string(given.pid.value) + "/task/" + std::to_string(*loop);
        if (::stat(task.c_str(), &st) != 0) {
            return make_error(ErrorKind::BadInput, "--loop-thread " + std::to_string(*loop) + ": process " +
                                                       std::to_string(given.pid.value) + " has no such thread");
        }
    }
    return std::optional<TargetProcess>(given);
}

/// The process to record: the one given, or the command launched; and its interpreter.
struct Target {
    std::optional<Child> child;
    Pid pid;
    Interpreter interp;
};

Result<Target> start_target(const RecordArgs& args, const std::optional<TargetProcess>& given) {
    Target t;
    if (given) {
        t.pid = given->pid;
        if (given->was_thread) {
            std::fprintf(stderr, "loopspy: %d is a thread of process %d: recording the process\n", *args.pid,
                         t.pid.value);
        }
    } else {
        LOOPSPY_TRY(Child spawned, Child::spawn(args.command));
        t.child.emplace(std::move(spawned));
        t.pid = t.child->pid();
    }
    RemoteMemory memory(t.pid);
    Result<Interpreter> found = t.child ? wait_for_interpreter(*t.child, memory) : find_interpreter(t.pid, memory);
    if (!found) return found.error();
    t.interp = std::move(found).value();
    if (t.child) t.child->pause();  // until sampling runs (resumed in record_command)
    return t;
}

ProfileInfo profile_info(const RecordArgs& args, const Target& t) {
    ProfileInfo info;
    info.tool_version = LOOPSPY_VERSION;
    info.command_line = args.self_command_line;
    info.pid = t.pid;
    info.target_command = process_cmdline(t.pid);
    info.python = t.interp.version;
    info.python_binary = t.interp.binary_path;
    info.kernel = kernel_release();
    info.rate_hz = args.rate_hz;
    return info;
}

RecorderOptions recorder_options(const RecordArgs& args, bool live_status) {
    RecorderOptions ro;
    ro.rate_hz = args.rate_hz;
    ro.task_rate_hz = args.task_rate_hz;
    ro.mode = args.sampling == "per-thread" ? SamplingMode::PerThread : SamplingMode::PerCpu;
    if (args.duration_s > 0) ro.duration = Nanoseconds{static_cast<std::int64_t>(args.duration_s * 1e9)};
    if (live_status) ro.on_status = print_status_line;
    ro.follow_children = args.subprocesses;
    ro.on_notice = [live_status](const std::string& line) {
        // Over the live status line, which the next update redraws below it.
        std::fprintf(stderr, "%sloopspy: %s\n", live_status ? "\r\033[K" : "", line.c_str());
    };
    return ro;
}

/// The summary lines: what was recorded, and every loss, by cause.
void print_summary(const RecordSummary& summary, const Profile& profile) {
    std::uint64_t lost = profile.lost.total();
    std::fprintf(stderr,
                 "loopspy: %llu samples (%s fully symbolized), %llu lost (%llu ring buffer full, %llu unreadable, "
                 "%llu before the thread was known, %llu never delivered), %llu off-CPU intervals (%llu lost), %llu selector waits, "
                 "%zu Python threads seen, %.2f s, %llu wake-ups\n",
                 static_cast<unsigned long long>(summary.samples),
                 percent(summary.fully_symbolized, summary.samples).c_str(), static_cast<unsigned long long>(lost),
                 static_cast<unsigned long long>(profile.lost.ringbuf_full),
                 static_cast<unsigned long long>(profile.lost.read_failed),
                 static_cast<unsigned long long>(profile.lost.no_thread_state),
                 static_cast<unsigned long long>(profile.lost.undelivered),
                 static_cast<unsigned long long>(summary.off_cpu_intervals),
                 static_cast<unsigned long long>(profile.lost.off_cpu),
                 static_cast<unsigned long long>(summary.selector_waits), summary.threads_seen,
                 summary.elapsed.seconds(), static_cast<unsigned long long>(summary.drains));
    if (summary.native_thread_samples > 0) {
        // Not in the profile, and not counted as lost: say so rather than drop them silently.
        std::fprintf(stderr,
                     "loopspy: %llu samples of threads never seen running Python (native threads, or Python "
                     "threads that ended before loopspy saw them) are not in the profile\n",
                     static_cast<unsigned long long>(summary.native_thread_samples));
    }
    if (summary.processes_recorded > 1 || summary.processes_not_python > 0) {
        std::fprintf(stderr, "loopspy: %zu processes recorded, %zu not recorded (not Python, or another Python version)\n",
                     summary.processes_recorded, summary.processes_not_python);
    }
    if (summary.failed_task_snapshots > 0) {
        std::fprintf(stderr, "loopspy: warning: %llu task snapshots could not be read (%s): tasks of those moments are "
                             "not named\n",
                     static_cast<unsigned long long>(summary.failed_task_snapshots), summary.task_failure.c_str());
    }
    if (summary.task_snapshots > 0) {
        std::fprintf(stderr, "loopspy: %llu task snapshots (up to %llu tasks), %.2f ms of CPU each on average\n",
                     static_cast<unsigned long long>(summary.task_snapshots),
                     static_cast<unsigned long long>(summary.most_tasks),
                     summary.task_snapshot_time.ms() / static_cast<double>(summary.task_snapshots));
    }
}

/// Ends a launched command if the recording ended first, says how the target ended, and returns
/// loopspy's exit status: the launched command's, when it exited.
int end_target(Target& t, const RecordSummary& summary) {
    if (t.child) {
        if (summary.reason != StopReason::TargetExited) t.child->terminate(2000);
        else t.child->exited();
        std::fprintf(stderr, "loopspy: the command %s\n", t.child->describe_exit().c_str());
        if (summary.reason == StopReason::TargetExited) return t.child->exit_status().value_or(0);
    } else if (summary.reason == StopReason::TargetExited) {
        std::fprintf(stderr, "loopspy: process %d exited\n", t.pid.value);
    }
    return 0;
}

const char* ending_of(StopReason reason) {
    switch (reason) {
        case StopReason::TargetExited: return "target exited";
        case StopReason::TargetLeftPython: return "target left Python";
        case StopReason::Signal: return "signal";
        default: return "duration";
    }
}

}  // namespace

Result<int> run_record(const RecordArgs& args) {
    LOOPSPY_TRY(std::optional<TargetProcess> given, validate(args));
    LOOPSPY_CHECK(check_privileges());
    LOOPSPY_CHECK(check_btf());
    // Probed once, before a command is launched; the sampler takes its attach points from it.
    std::vector<KernelFeature> kernel_features = probe_kernel_features();
    LOOPSPY_CHECK(check_required_features(kernel_features));
    // Every file can be written before the first sample: the outputs, and the recording's folder
    // (the default name goes in the current folder).
    LOOPSPY_CHECK(check_output_files(args.outputs));
    LOOPSPY_CHECK(check_output_path(args.recording.empty() ? "loopspy-recording.lspy" : args.recording,
                                    args.outputs.force));
    install_stop_handlers();
    // SCHED_BATCH: the recorder never preempts on wake-up, so draining events does not take the
    // CPU from the thread being profiled (which would show up as off-CPU time in its profile).
    sched_param batch{};
    ::sched_setscheduler(0, SCHED_BATCH, &batch);

    LOOPSPY_TRY(Target target, start_target(args, given));
    const Pid pid = target.pid;
    Profile profile;
    profile.info = profile_info(args, target);
    const bool live_status = !args.top && !args.no_status && ::isatty(STDERR_FILENO);
    std::string recording_path = args.recording.empty()
                                     ? "loopspy-" + std::to_string(pid.value) + "-" + timestamp_for_file_name() + ".lspy"
                                     : args.recording;
    LOOPSPY_TRY(auto writer, RecordingWriter::create(recording_path, args.outputs.force));
    RecorderOptions options = recorder_options(args, live_status);
    options.kernel_features = std::move(kernel_features);
    std::unique_ptr<TopView> view;
    std::vector<std::string> notices;  // top: said after the view, which covers the terminal
    if (args.top) {
        options.on_status = [&view](const RecorderStatus& st, bool final) {
            if (view) view->on_status(st, final);
        };
        options.on_notice = [&notices](const std::string& line) { notices.push_back(line); };
    }
    auto started = Recorder::attach(pid, target.interp, options, profile);
    if (target.child) target.child->resume();
    if (!started) {
        writer.reset();
        ::unlink(recording_path.c_str());  // nothing was recorded
        return started.error();
    }
    auto recorder = std::move(started).value();
    // Said once sampling runs, so that from this line on nothing the target does is missed.
    std::fprintf(stderr, "loopspy: recording pid %d (Python %s, %s) at %d Hz%s\n", pid.value,
                 target.interp.version.text().c_str(), target.interp.binary_path.c_str(), args.rate_hz,
                 live_status ? "; Ctrl-C to stop" : "");
    // The target's CPU time as the kernel counts it, from its start here to its last reading while
    // it ran: what the profile must account for.
    const std::optional<ProcessStat> cpu_at_start = read_process_stat(pid);
    Nanoseconds cpu_last = cpu_at_start ? cpu_at_start->cpu : Nanoseconds{};
    auto alive = [&]() {
        const std::optional<ProcessStat> st = read_process_stat(pid);  // one read for both questions
        if (st) cpu_last = std::max(cpu_last, st->cpu);
        if (!target.child) return st && st->running();
        if (!target.child->exited()) return true;
        // A launched command's CPU time to its last instant, from its reaping.
        if (auto cpu = target.child->cpu()) cpu_last = std::max(cpu_last, *cpu);
        return false;
    };
    // Once a second the new events go to the file and out of memory, so memory stays flat
    // however long the recording; the outputs are made from the file at the end.
    auto checkpoint = [&]() -> Result<void> {
        LOOPSPY_CHECK(writer->flush(profile));
        if (view) view->trim();  // top keeps a moving window to show
        else profile.drop_events();
        return {};
    };
    if (args.top) view = std::make_unique<TopView>(profile, args.outputs.threshold_ms, g_stop);
    auto ran = recorder->run(g_stop, alive, checkpoint);
    view.reset();  // the terminal as it was, before anything more is printed
    for (const std::string& line : notices) std::fprintf(stderr, "loopspy: %s\n", line.c_str());
    LOOPSPY_TRY(RecordSummary summary, std::move(ran));
    recorder.reset();  // detach before writing
    // The rate the kernel delivered: what the target's CPU time called for and never came is lost
    // too, and the recording keeps what the rate is measured by.
    std::optional<std::string> rate_text;
    if (cpu_at_start) {
        const Nanoseconds cpu = cpu_last - cpu_at_start->cpu;
        const LossCounters& l = profile.lost;
        const std::uint64_t delivered =
            summary.samples + l.ringbuf_full + l.read_failed + l.no_thread_state + summary.native_thread_samples;
        const SamplingRate rate = sampling_rate(delivered, cpu, args.rate_hz);
        profile.lost.undelivered = rate.undelivered;
        profile.lost.target_cpu_ns = static_cast<std::uint64_t>(std::max<std::int64_t>(cpu.value, 0));
        rate_text = rate_line(rate, cpu);
    }
    profile.lost.native_thread = summary.native_thread_samples;
    print_summary(summary, profile);
    if (rate_text) std::fprintf(stderr, "loopspy: %s\n", rate_text->c_str());
    const int exit_code = end_target(target, summary);

    // The recording first: it is what a crash here must not lose. Outputs are then made from
    // the same Profile, through the same code `replay` uses.
    std::optional<Error> failure = summary.checkpoint_error;
    if (!failure) {
        if (auto r = writer->finish(profile, ending_of(summary.reason)); !r) failure = r.error();
    }
    if (failure) {
        std::fprintf(stderr, "loopspy: %s stays readable up to its last complete chunk\n", recording_path.c_str());
        return *failure;
    }
    std::fprintf(stderr, "loopspy: wrote recording to %s (%llu bytes)\n", recording_path.c_str(),
                 static_cast<unsigned long long>(writer->bytes_written()));
    if (args.outputs.any()) {
        keep_freed_memory_for_reuse();  // recording is over: from here on this is a replay
        LOOPSPY_TRY(ReadResult recorded, read_recording(recording_path));
        LOOPSPY_CHECK(write_outputs(recorded.profile, args.outputs, ""));
    }
    return exit_code;
}

}  // namespace loopspy
