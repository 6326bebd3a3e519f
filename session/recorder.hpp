// The recording engine: keeps the kernel's view of the target's threads current, drains the
// events of an EventSource (the BPF sampler, or canned events in tests), names them, and fills a
// Profile.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "bpf/event_source.hpp"
#include "bpf/sampler.hpp"
#include "session/task_tracker.hpp"
#include "recording/profile.hpp"
#include "symbolizer/frames/code_symbolizer.hpp"
#include "symbolizer/cpython/interpreter.hpp"
#include "symbolizer/frames/stack_resolver.hpp"

namespace loopspy {

/// What the recording looks like now, for a live status line.
struct RecorderStatus {
    Pid pid;
    Nanoseconds elapsed;
    std::uint64_t samples = 0;  // on-CPU samples
    std::uint64_t lost = 0;     // samples the kernel could not deliver or read, or of unknown threads
    std::size_t threads = 0;    // Python threads now
};

struct RecorderOptions {
    int rate_hz = 1000;
    SamplingMode mode = SamplingMode::PerCpu;
    std::optional<Nanoseconds> duration;
    bool track_off_cpu = true;
    double task_rate_hz = 10;  // task snapshots per second (0: no task snapshots)
    bool follow_children = false;  // --subprocesses: record every descendant too
    std::vector<KernelFeature> kernel_features;  // as probed before the target started (empty: probed at attach)
    /// One line for the user (a child followed, a process that left Python), printed as it happens.
    std::function<void(const std::string&)> on_notice;
    /// Called about 4 times a second while recording, and once at the end (final = true).
    std::function<void(const RecorderStatus&, bool final)> on_status;
};

enum class StopReason { Duration, Signal, TargetExited, TargetLeftPython, CheckpointFailed };

struct RecordSummary {
    StopReason reason = StopReason::Duration;
    std::uint64_t samples = 0;            // on-CPU samples
    std::uint64_t off_cpu_intervals = 0;
    std::uint64_t selector_waits = 0;
    std::uint64_t fully_symbolized = 0;   // on-CPU samples whose every frame was named
    std::uint64_t native_thread_samples = 0;  // samples of threads that never ran Python
    std::size_t threads_seen = 0;
    std::size_t processes_recorded = 0;   // the target and every child recorded
    std::size_t processes_not_python = 0; // children (or exec'd programs) not recorded: not Python,
                                          // or another Python version than the recording's
    std::uint64_t drains = 0;  // ring-buffer drains (the recorder's wake-ups)
    std::uint64_t task_snapshots = 0;
    std::uint64_t most_tasks = 0;   // the largest number of tasks one snapshot saw
    std::uint64_t failed_task_snapshots = 0;  // snapshots whose tasks could not be read
    std::string task_failure;                 // why the last of them failed
    Nanoseconds task_snapshot_time; // spent reading tasks
    Nanoseconds elapsed;
    std::optional<Error> checkpoint_error;  // why the checkpoint failed (StopReason::CheckpointFailed)
};

/// The rate the target was sampled at: the samples the kernel delivered (recorded, lost after it
/// delivered them, or of threads never seen running Python) per second of the target's CPU time
/// as the kernel counts it. What that CPU time called for beyond them, when more than the CPU
/// clock's resolution explains, is `undelivered`: samples the kernel never delivered (perf
/// throttles cpu-clock events above kernel.perf_event_max_sample_rate, and when their interrupts
/// take too long), counted as lost.
struct SamplingRate {
    int requested_hz = 0;
    bool measured = false;          // false: too little CPU time to say
    double achieved_hz = 0;
    double share = 1;               // delivered / what the CPU time called for
    std::uint64_t undelivered = 0;
};
SamplingRate sampling_rate(std::uint64_t delivered, Nanoseconds target_cpu, int rate_hz);

/// Below this share of the requested rate the summary warns.
inline constexpr double kAchievedShare = 0.95;
/// The least CPU time of the target whose rate the summary states (without a shortfall to warn of).
inline constexpr Nanoseconds kRateCpuTime{300'000'000};

/// The summary's line on the rate: "achieved N Hz of M Hz requested ...", a warning under
/// kAchievedShare when the shortfall is more than the CPU clock's resolution explains (the loud
/// zero, "missing most of the target's CPU time", under half). nullopt when the target used too
/// little CPU to say: under 20 samples' worth, or under kRateCpuTime with no such shortfall.
std::optional<std::string> rate_line(const SamplingRate& rate, Nanoseconds target_cpu);

class Recorder {
public:
    /// Loads the BPF sampler for `pid`, whose interpreter is `interp`, and starts recording.
    static Result<std::unique_ptr<Recorder>> attach(Pid pid, Interpreter interp, const RecorderOptions& options,
                                                    Profile& profile);
    /// Starts recording from `source` (attach() with the sampler; tests with canned events).
    static Result<std::unique_ptr<Recorder>> start(Pid pid, Interpreter interp, const RecorderOptions& options,
                                                   Profile& profile, std::unique_ptr<EventSource> source);

    /// Records until the duration ends, `stop_requested` becomes true, or `target_alive` says no.
    /// `checkpoint` runs about once a second (the recording file's flush); if it fails, recording
    /// stops and the summary carries the error.
    Result<RecordSummary> run(const std::atomic<bool>& stop_requested, const std::function<bool()>& target_alive,
                              const std::function<Result<void>()>& checkpoint);
    ~Recorder();

private:
    struct Process;
    Recorder(Pid pid, const RecorderOptions& options, Profile& profile);
    Result<void> add_process(Pid pid, Pid parent, Interpreter interp);
    Result<void> refresh_threads();
    Result<void> refresh_threads(Process& p);
    void drop_process(Pid pid, bool ended);
    void on_process_event(const ProcessEvent& e);
    /// Attaches to new children and re-reads exec'd programs; false when the target left Python.
    bool handle_process_changes();
    struct Pending;
    enum class Settled { Done, Waiting, RootLeftPython };
    /// One pending process: recorded, refused (said why), gone, or still waiting for its program.
    Settled settle(const Pending& p, std::chrono::steady_clock::time_point now);
    /// The recorded process an event belongs to, or null.
    Process* process_of(const RawSample& raw);
    /// Checks the followed children: those that exited are dropped.
    void check_children();
    void on_sample(const RawSample& raw);
    void on_selector_wait(const SelectorWait& wait);
    /// Tells the kernel side how to find the process's running task, once asyncio is found.
    void publish_task_finder(Process& p);
    /// The task the kernel found running a sample's coroutine, as a TaskId + 1 (0: unnamed).
    std::uint32_t captured_task(Process& p, const RawSample& raw, std::uint64_t coro);
    void account_unknown_threads();
    void report_status(Nanoseconds elapsed, bool final);
    void notice(const std::string& line) const;

    Pid root_;
    RecorderOptions options_;
    Profile& profile_;
    std::unique_ptr<EventSource> sampler_;
    FrameWalkLayout layout_{};  // what the kernel side walks frames with: one Python version per recording
    std::map<Pid, std::unique_ptr<Process>> processes_;
    std::unordered_map<Tid, Process*> owner_;  // published thread -> its process
    /// Processes to (re)read: a fork (now) or an exec (once its new program has mapped).
    struct Pending {
        Pid pid;
        Pid parent;
        bool exec = false;
        std::chrono::steady_clock::time_point give_up;
    };
    std::vector<Pending> pending_;
    std::set<Tid> python_threads_;                     // every thread ever seen with a thread state
    std::unordered_set<std::uint64_t> known_shapes_;  // stack shapes the kernel side knows as named
    std::vector<ResolvedFrame> resolved_;
    std::vector<FrameId> frame_ids_;
    std::string key_;
    Nanoseconds period_;
    std::uint64_t samples_ = 0;  // on-CPU samples
    std::uint64_t off_cpu_intervals_ = 0;
    std::uint64_t fully_symbolized_ = 0;
    std::uint64_t native_thread_samples_ = 0;
    std::uint64_t unnamed_captured_tasks_ = 0;  // running tasks the kernel found whose name could not be read
    std::uint64_t untracked_off_cpu_ = 0;  // off-CPU intervals of Python threads with no thread state published
    std::uint64_t last_no_tstate_ = 0;
    std::uint64_t orphan_events_ = 0;  // events of a thread whose process was just dropped
    bool root_left_python_ = false;    // the target exec'd a program loopspy cannot record
    std::vector<Pid> exited_;          // children seen gone, dropped at the next check
    struct {
        std::uint64_t snapshots = 0, most = 0, failed = 0;
        Nanoseconds time{0};
        std::string failure;
    } dropped_tasks_;  // the task trackers of processes no longer recorded
    std::size_t processes_recorded_ = 0;
    std::size_t processes_not_python_ = 0;
    bool sampling_started_ = false;
    std::uint64_t polls_ = 0;  // how often the recorder drained the ring buffer
};

}  // namespace loopspy
