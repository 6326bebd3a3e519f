// The in-memory model of a recording: deduplicated strings, frames and stacks, and the samples
// that point at them. The recorder fills it; every report reads it. (The file format that
// persists it lives beside it: recording/format.hpp, specified in docs/recording-format.md.)
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/selector_wait.hpp"
#include "core/types.hpp"

namespace loopspy {

using StringId = std::uint32_t;
using FrameId = std::uint32_t;
using StackId = std::uint32_t;

/// Frame flags.
inline constexpr std::uint32_t kFrameCoroutine = 1;  // code is a coroutine / async generator / generator
inline constexpr std::uint32_t kFrameSpecial = 2;    // a marker such as <truncated> or <unknown>, not Python code

struct FrameRecord {
    StringId name = 0;  // qualname
    StringId file = 0;
    std::int32_t line = 0;
    std::uint32_t flags = 0;
    auto operator<=>(const FrameRecord&) const = default;
};

enum class SampleKind : std::uint8_t {
    OnCpu = 1,   // a cpu-clock sample; weight = the sampling period
    OffCpu = 2,  // an exact interval off-CPU; time = when it left the CPU, weight = how long
};

/// Why a thread was off-CPU (SampleRecord::off_flags).
inline constexpr std::uint32_t kOffPreempted = 1;  // still runnable: the scheduler took the CPU
inline constexpr std::uint32_t kOffGil = 2;        // asleep waiting to take its interpreter's GIL
// Other bits are kept as read, and mean nothing yet. A loop's idle time is not an off-CPU
// interval: it is the selector waits (SelectorWait), which the kernel side records apart.

/// No syscall in progress.
inline constexpr std::int32_t kNoSyscall = -1;

/// Sample flags.
inline constexpr std::uint32_t kSampleTruncated = 1;   // deeper than the kernel walks: outermost frames missing
inline constexpr std::uint32_t kSamplePartial = 2;     // a frame read failed: outer frames missing
inline constexpr std::uint32_t kSampleUnnamed = 4;     // at least one frame could not be named

struct SampleRecord {
    Tid tid;
    Nanoseconds time;    // CLOCK_MONOTONIC; for OffCpu, when the thread left the CPU
    Nanoseconds weight;  // OnCpu: the sampling period; OffCpu: the interval's exact duration
    StackId stack = 0;
    SampleKind kind = SampleKind::OnCpu;
    std::uint32_t flags = 0;      // kSample*
    std::uint32_t off_flags = 0;  // OffCpu: kOff*
    std::int32_t syscall = kNoSyscall;  // OffCpu: the syscall in progress when it left (x86-64 number)
    /// The coroutine object whose frame was the outermost coroutine frame of the stack (the running
    /// task's coroutine, when a task runs), 0 if none. Which task it was is decided from the task
    /// snapshots (reports/task_attribution.hpp), not here.
    std::uint64_t coro = 0;
    /// The task the kernel found running that coroutine at the instant (its TaskId + 1; 0: none
    /// found): it names a sample even of a task no snapshot saw (reports/task_attribution.hpp).
    std::uint32_t task = 0;
    /// OffCpu with kOffGil: the thread that held the GIL when it went to sleep on it (0: unknown).
    Tid gil_holder;
    bool operator==(const SampleRecord&) const = default;
};

using TaskId = std::uint32_t;

/// One asyncio Task as loopspy saw it: a task is identified by its address, its coroutine's
/// address and its name together, so a freed task whose address is reused is a new TaskRecord.
struct TaskRecord {
    std::uint64_t addr = 0;  // the Task object
    std::uint64_t coro = 0;  // its coroutine object
    StringId name = 0;       // the task's name
    StringId coro_name = 0;  // the coroutine's __qualname__ (checked against sampled frames)
    Pid pid;                 // the process it lives in (forked workers share addresses)
    bool operator==(const TaskRecord&) const = default;
};

enum class TaskState : std::uint8_t {
    Suspended = 0,  // pending, not running: awaiting something
    Running = 1,    // its coroutine was executing at the snapshot
    Done = 2,       // finished (result, exception or cancelled) but still alive
};

/// A task's state in a snapshot.
struct TaskEntry {
    TaskId task = 0;
    TaskState state = TaskState::Suspended;
    /// Suspended: the await chain, outermost first: the task's coroutine frame, the coroutines it
    /// awaits, and a last special frame `<awaiting TYPE>` naming the object at the bottom (a
    /// Future, a Task, ...). Empty (stack 0 of no frames) otherwise.
    StackId stack = 0;
    std::vector<TaskId> awaited_by;  // the tasks that await this one
    bool operator==(const TaskEntry&) const = default;
};

/// What changed in one process's task set since its previous snapshot (the first one lists every
/// task). Each process's snapshots are their own chain of deltas.
struct TaskSnapshot {
    Nanoseconds time;                 // CLOCK_MONOTONIC when the snapshot was read
    std::vector<TaskEntry> changed;   // new tasks and tasks whose entry changed
    std::vector<TaskId> removed;      // tasks gone since the previous snapshot
    Pid pid;                          // the process whose tasks these are
    bool operator==(const TaskSnapshot&) const = default;
};

/// A process of the recording: the target, and with --subprocesses each descendant the recorder
/// followed. A process that exec'd a new program is recorded again under the same pid.
struct ProcessRecord {
    Pid pid;
    Pid parent;                  // the recorded process it descends from; 0 for the target
    std::string command;         // its command line
    PythonVersion python;
    std::string python_binary;
    bool operator==(const ProcessRecord&) const = default;
};


struct ProfileInfo {
    std::string tool_version;
    std::string command_line;    // loopspy's own
    Pid pid;
    std::string target_command;  // the target's command line
    PythonVersion python;
    std::string python_binary;
    std::string kernel;
    int rate_hz = 0;
    Nanoseconds start;
    Nanoseconds end;
    bool operator==(const ProfileInfo&) const = default;
};

struct LossCounters {
    std::uint64_t ringbuf_full = 0;     // the ring buffer had no room
    std::uint64_t read_failed = 0;      // the thread's frame chain could not be read at all
    std::uint64_t no_thread_state = 0;  // a Python thread sampled before loopspy knew its thread state
    std::uint64_t off_cpu = 0;          // off-CPU intervals that could not be kept or emitted
    std::uint64_t selector = 0;         // selector events lost to a full ring buffer (their counts ride on)
    std::uint64_t undelivered = 0;      // (1.3) samples the target's CPU time called for that the kernel never delivered
    std::uint64_t native_thread = 0;    // (1.3) samples of threads never seen running Python: not in the profile
    std::uint64_t target_cpu_ns = 0;    // (1.3) the target's CPU time while recorded, as the kernel counts it (0: unknown)
    /// Lost on-CPU samples.
    std::uint64_t total() const { return ringbuf_full + read_failed + no_thread_state + undelivered; }
    /// The samples the kernel delivered per second of the target's CPU time (0: unknown), given
    /// the on-CPU samples in the profile.
    double achieved_hz(std::uint64_t recorded) const {
        if (target_cpu_ns == 0) return 0;
        const std::uint64_t delivered = recorded + ringbuf_full + read_failed + no_thread_state + native_thread;
        return static_cast<double>(delivered) * 1e9 / static_cast<double>(target_cpu_ns);
    }
    bool operator==(const LossCounters&) const = default;
};

class Profile {
public:
    ProfileInfo info;
    LossCounters lost;

    StringId intern_string(std::string_view s);
    /// A string that lives as long as the task it names: interned like any other, and let go by
    /// drop_events once it is in the recording, so a service that starts thousands of tasks a
    /// second keeps no name of a task that is gone. (The same text later gets a new id.)
    StringId intern_task_string(std::string_view s);
    /// A string as a recording holds it, at the next id even if the text is already known (a
    /// 1.4 recording repeats the names of tasks started after their first holder was let go).
    StringId add_string(std::string_view s);
    FrameId intern_frame(std::string_view name, std::string_view file, std::int32_t line, std::uint32_t flags);
    /// Frames outermost first.
    StackId intern_stack(std::span<const FrameId> frames);
    void add_sample(const SampleRecord& s) { samples_.push_back(s); }
    /// Room for `samples` samples and `waits` selector waits in all, in memory backed by huge pages
    /// where it is large (the reader's estimate from chunk headers, so that one allocation each
    /// holds a whole recording).
    void reserve_events(std::size_t samples, std::size_t waits);
    /// Adds a chunk's samples at once (insert grows the vector geometrically).
    void add_samples(std::span<const SampleRecord> more) { samples_.insert(samples_.end(), more.begin(), more.end()); }
    void add_selector_wait(const SelectorWait& w) { selector_waits_.push_back(w); }
    /// Adds a chunk's selector waits at once.
    void add_selector_waits(std::span<const SelectorWait> more) {
        selector_waits_.insert(selector_waits_.end(), more.begin(), more.end());
    }
    /// The id of a task seen (the same record gets the same id while it is held).
    TaskId intern_task(const TaskRecord& t);
    /// A task as a recording holds it, at the next id even if the same record is known.
    TaskId add_task(const TaskRecord& t);
    void add_task_snapshot(TaskSnapshot s) { snapshots_.push_back(std::move(s)); }
    /// Sets the coroutine of the sample with absolute index `index` (the reader's sample-coroutines chunk).
    bool set_sample_coro(std::size_t index, std::uint64_t coro);
    /// Sets the captured task (TaskId + 1) of the sample with absolute index `index`.
    bool set_sample_task(std::size_t index, std::uint32_t task);
    bool set_sample_gil_holder(std::size_t index, Tid holder);
    void set_thread_name(Tid tid, std::string name) { threads_[tid] = std::move(name); }
    /// Records a process (a later record for the same pid replaces it).
    void set_process(ProcessRecord p) { processes_[p.pid] = std::move(p); }
    /// Says which process a thread belongs to (a recording of one process need not).
    void set_thread_process(Tid tid, Pid pid) { thread_processes_[tid] = pid; }

    std::string_view string(StringId id) const {
        if (id >= strings_dropped_) return strings_[id - strings_dropped_];
        auto it = kept_strings_.find(id);
        return it != kept_strings_.end() ? std::string_view(*it->second) : std::string_view();
    }
    const FrameRecord& frame(FrameId id) const { return frames_[id]; }
    std::span<const FrameId> stack(StackId id) const;
    /// The samples and waits still held; ids before samples_dropped()/waits_dropped() were
    /// handed to the recording file and let go (see drop_events).
    const std::vector<SampleRecord>& samples() const { return samples_; }
    const std::vector<SelectorWait>& selector_waits() const { return selector_waits_; }
    std::size_t samples_dropped() const { return samples_dropped_; }
    std::size_t waits_dropped() const { return waits_dropped_; }
    /// The task records held: ids from tasks_dropped() on (a replay holds them all).
    const std::vector<TaskRecord>& tasks() const { return tasks_; }
    std::size_t tasks_dropped() const { return tasks_dropped_; }
    std::size_t task_count() const { return tasks_dropped_ + tasks_.size(); }
    const std::vector<TaskSnapshot>& task_snapshots() const { return snapshots_; }
    std::size_t snapshots_dropped() const { return snapshots_dropped_; }
    /// Lets go of every sample, wait, task snapshot, task record and task name held, once they
    /// are safely in a recording, so a long recording's memory stays flat however many tasks come
    /// and go. The code's tables (its strings, frames, stacks) stay.
    void drop_events();
    /// Lets go of the samples and waits before the absolute indexes `sample` and `wait` (already
    /// in the recording), keeping the newer ones and every task snapshot: `top`'s moving window.
    void drop_events_before(std::size_t sample, std::size_t wait) {
        const std::size_t ns = std::min(samples_.size(), sample > samples_dropped_ ? sample - samples_dropped_ : 0);
        const std::size_t nw = std::min(selector_waits_.size(), wait > waits_dropped_ ? wait - waits_dropped_ : 0);
        samples_.erase(samples_.begin(), samples_.begin() + static_cast<std::ptrdiff_t>(ns));
        selector_waits_.erase(selector_waits_.begin(), selector_waits_.begin() + static_cast<std::ptrdiff_t>(nw));
        samples_dropped_ += ns;
        waits_dropped_ += nw;
    }
    const std::map<Tid, std::string>& threads() const { return threads_; }
    std::string thread_name(Tid tid) const;
    const std::map<Pid, ProcessRecord>& processes() const { return processes_; }
    const std::map<Tid, Pid>& thread_processes() const { return thread_processes_; }
    /// The process of a thread: as recorded, else the target (info.pid).
    Pid process_of(Tid tid) const {
        auto it = thread_processes_.find(tid);
        return it == thread_processes_.end() ? info.pid : it->second;
    }
    /// More than one process: every output then has a section per process.
    bool multi_process() const { return processes_.size() > 1; }
    /// "process PID COMMAND": the root frame of a process's section.
    std::string process_label(Pid pid) const;

    /// "qualname (file:line)", or the bare name of a special frame; without the line,
    /// "qualname (file)": the function, whatever line it was at.
    std::string format_frame(FrameId id, bool with_line = true) const;

    std::size_t string_count() const { return strings_dropped_ + strings_.size(); }
    std::size_t frame_count() const { return frames_.size(); }
    std::size_t stack_count() const { return stack_offsets_.size(); }

private:
    struct FrameHash {
        std::size_t operator()(const FrameRecord& f) const noexcept {
            return (static_cast<std::size_t>(f.name) * 1000003u) ^ (static_cast<std::size_t>(f.file) * 7919u) ^
                   static_cast<std::size_t>(f.line) ^ (static_cast<std::size_t>(f.flags) << 29);
        }
    };
    std::vector<std::string> strings_;  // ids from strings_dropped_ on
    std::size_t strings_dropped_ = 0;
    /// Looks strings up by string_view, so that interning a string already known (every sample
    /// whose stack the recorder has not cached) allocates nothing.
    struct StringKeyHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, StringId, StringKeyHash, std::equal_to<>> string_ids_;
    /// Strings dropped from strings_ that stay (the code's): their text is string_ids_'s key.
    std::unordered_map<StringId, const std::string*> kept_strings_;
    /// Ids of the task names in strings_ (no frame uses them), let go at drop_events.
    std::unordered_set<StringId> task_strings_;
    std::vector<FrameRecord> frames_;
    std::unordered_map<FrameRecord, FrameId, FrameHash> frame_ids_;
    std::vector<FrameId> stack_frames_;                      // all stacks, concatenated
    std::vector<std::pair<std::uint32_t, std::uint32_t>> stack_offsets_;  // (begin, size) per stack
    std::unordered_map<std::string, StackId, StringKeyHash, std::equal_to<>> stack_ids_;  // key: the frame ids' bytes
    std::vector<SampleRecord> samples_;
    std::vector<SelectorWait> selector_waits_;
    std::size_t samples_dropped_ = 0;
    std::size_t waits_dropped_ = 0;
    std::vector<TaskRecord> tasks_;  // ids from tasks_dropped_ on
    std::size_t tasks_dropped_ = 0;
    std::map<std::tuple<std::int32_t, std::uint64_t, std::uint64_t, StringId, StringId>, TaskId> task_ids_;
    std::vector<TaskSnapshot> snapshots_;
    std::size_t snapshots_dropped_ = 0;
    std::map<Tid, std::string> threads_;
    std::map<Pid, ProcessRecord> processes_;
    std::map<Tid, Pid> thread_processes_;
};

}  // namespace loopspy
