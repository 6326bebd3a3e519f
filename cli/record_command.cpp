#include "cli/record_command.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <thread>

#include "cli/launch.hpp"
#include "cli/preflight.hpp"
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

}  // namespace

Result<int> run_record(const RecordArgs& args) {
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
    if (!std::isfinite(args.task_rate_hz) || args.task_rate_hz < 0 || args.task_rate_hz > 1000) {
        return make_error(ErrorKind::BadInput, "--task-rate must be between 0 and 1000 snapshots per second");
    }
    if (args.pid && !process_exists(Pid{*args.pid})) {
        return make_error(ErrorKind::NoSuchProcess, "no process with pid " + std::to_string(*args.pid));
    }
    LOOPSPY_CHECK(check_privileges());
    LOOPSPY_CHECK(check_btf());
    install_stop_handlers();
    // SCHED_BATCH: the recorder never preempts on wake-up, so draining events does not take the
    // CPU from the thread being profiled (which would show up as off-CPU time in its profile).
    sched_param batch{};
    ::sched_setscheduler(0, SCHED_BATCH, &batch);

    std::optional<Child> child;
    Pid pid;
    if (args.pid) {
        pid = Pid{*args.pid};
    } else {
        LOOPSPY_TRY(Child spawned, Child::spawn(args.command));
        child.emplace(std::move(spawned));
        pid = child->pid();
    }
    RemoteMemory memory(pid);
    Result<Interpreter> found = child ? wait_for_interpreter(*child, memory) : find_interpreter(pid, memory);
    if (!found) return found.error();
    Interpreter interp = std::move(found).value();

    Profile profile;
    profile.info.tool_version = LOOPSPY_VERSION;
    profile.info.command_line = args.self_command_line;
    profile.info.pid = pid;
    profile.info.target_command = process_cmdline(pid);
    profile.info.python = interp.version;
    profile.info.python_binary = interp.binary_path;
    profile.info.kernel = kernel_release();
    profile.info.rate_hz = args.rate_hz;

    RecorderOptions ro;
    ro.rate_hz = args.rate_hz;
    ro.task_rate_hz = args.task_rate_hz;
    ro.mode = args.sampling == "per-thread" ? SamplingMode::PerThread : SamplingMode::PerCpu;
    if (args.duration_s > 0) ro.duration = Nanoseconds{static_cast<std::int64_t>(args.duration_s * 1e9)};
    const bool live_status = !args.no_status && ::isatty(STDERR_FILENO);
    if (live_status) ro.on_status = print_status_line;

    std::fprintf(stderr, "loopspy: recording pid %d (Python %s, %s) at %d Hz%s\n", pid.value,
                 interp.version.text().c_str(), interp.binary_path.c_str(), args.rate_hz,
                 live_status ? "; Ctrl-C to stop" : "");
    std::string stamp = timestamp_for_file_name();
    std::string recording_path =
        args.recording.empty() ? "loopspy-" + std::to_string(pid.value) + "-" + stamp + ".lspy" : args.recording;
    LOOPSPY_TRY(auto writer, RecordingWriter::create(recording_path));
    auto started = Recorder::attach(pid, interp, ro, profile);
    if (!started) {
        writer.reset();
        ::unlink(recording_path.c_str());  // nothing was recorded
        return started.error();
    }
    auto recorder = std::move(started).value();
    auto alive = [&]() { return child ? !child->exited() : process_exists(pid); };
    // Once a second the new events go to the file and out of memory, so memory stays flat
    // however long the recording; the outputs are made from the file at the end.
    auto checkpoint = [&]() -> Result<void> {
        LOOPSPY_CHECK(writer->flush(profile));
        profile.drop_events();
        return {};
    };
    LOOPSPY_TRY(RecordSummary summary, recorder->run(g_stop, alive, checkpoint));
    recorder.reset();  // detach before writing

    std::uint64_t lost = profile.lost.total();
    std::fprintf(stderr,
                 "loopspy: %llu samples (%s fully symbolized), %llu lost (%llu ring buffer full, %llu unreadable, "
                 "%llu before the thread was known), %llu off-CPU intervals (%llu lost), %llu selector waits, "
                 "%zu Python threads seen, %.2f s, %llu wake-ups\n",
                 static_cast<unsigned long long>(summary.samples),
                 percent(summary.fully_symbolized, summary.samples).c_str(), static_cast<unsigned long long>(lost),
                 static_cast<unsigned long long>(profile.lost.ringbuf_full),
                 static_cast<unsigned long long>(profile.lost.read_failed),
                 static_cast<unsigned long long>(profile.lost.no_thread_state),
                 static_cast<unsigned long long>(summary.off_cpu_intervals),
                 static_cast<unsigned long long>(profile.lost.off_cpu),
                 static_cast<unsigned long long>(summary.selector_waits), summary.threads_seen,
                 summary.elapsed.seconds(), static_cast<unsigned long long>(summary.drains));
    if (summary.task_snapshots > 0) {
        std::fprintf(stderr, "loopspy: %llu task snapshots (up to %llu tasks), %.2f ms of CPU each on average\n",
                     static_cast<unsigned long long>(summary.task_snapshots),
                     static_cast<unsigned long long>(summary.most_tasks),
                     summary.task_snapshot_time.ms() / static_cast<double>(summary.task_snapshots));
    }

    int exit_code = 0;
    if (child) {
        if (summary.reason != StopReason::TargetExited) child->terminate(2000);
        else child->exited();
        std::fprintf(stderr, "loopspy: the command %s\n", child->describe_exit().c_str());
        if (summary.reason == StopReason::TargetExited) exit_code = child->exit_status().value_or(0);
    } else if (summary.reason == StopReason::TargetExited) {
        std::fprintf(stderr, "loopspy: process %d exited\n", pid.value);
    }
    // The recording first: it is what a crash here must not lose. Outputs are then made from
    // the same Profile, through the same code `replay` uses.
    std::optional<Error> failure = summary.checkpoint_error;
    if (!failure) {
        const char* ending = summary.reason == StopReason::TargetExited ? "target exited"
                             : summary.reason == StopReason::Signal     ? "signal"
                                                                        : "duration";
        if (auto r = writer->finish(profile, ending); !r) failure = r.error();
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
