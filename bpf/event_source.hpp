// What the recording engine needs from the kernel side: the target's samples, off-CPU intervals
// and selector waits as they arrive, and a way to tell it which threads run Python. Sampler
// (bpf/sampler.hpp) is the real one; unit tests drive the engine with canned events instead.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

#include "bpf/loopspy.h"
#include "core/result.hpp"
#include "core/selector_wait.hpp"
#include "core/types.hpp"

namespace loopspy {

/// One sample or off-CPU interval as the kernel emitted it: frames innermost first.
struct RawSample {
    std::uint32_t kind = 0;  // LOOPSPY_EVENT_ON_CPU or LOOPSPY_EVENT_OFF_CPU
    Tid tid;
    Pid pid;  // the thread's process
    Nanoseconds timestamp;
    std::uint32_t flags = 0;
    std::span<const loopspy_frame> frames;
    Nanoseconds duration;               // OFF_CPU
    std::int32_t syscall = -1;          // OFF_CPU
    std::uint32_t off_flags = 0;        // OFF_CPU
    RemoteAddr coro;                    // the outermost generator-owned frame's coroutine, 0 if none
    RemoteAddr task;                    // the Task driving that coroutine at the instant, 0 if unknown
    RemoteAddr task_name_obj;           // its task_name object, 0 if unread
    RemoteAddr gil_holder;              // OFF_CPU waiting for the GIL: the thread state holding it, 0 if unread
    std::span<const std::byte> task_name_bytes;  // that object's first bytes
};


/// A target process forked a child (already sampled, with --subprocesses) or exec'd.
struct ProcessEvent {
    enum class Change { Forked, Execed } change = Change::Forked;
    Pid pid;
    Pid parent;  // Forked: the target that forked it
    Nanoseconds timestamp;
};

/// The kernel side's counters, summed over CPUs: one slot per enum loopspy_stat (bpf/loopspy.h),
/// which says what each counts.
struct SamplerStats {
    std::array<std::uint64_t, LOOPSPY_STAT__COUNT> counts{};
    std::uint64_t operator[](loopspy_stat stat) const { return counts[stat]; }
    std::uint64_t& operator[](loopspy_stat stat) { return counts[stat]; }
};

/// What the kernel saw of one thread that had no thread state published: a Python thread's is
/// lost (loopspy had not seen it yet), a native thread's is not part of a Python profile.
struct UnknownThread {
    Tid tid;
    std::uint64_t samples = 0;  // on-CPU samples
    std::uint64_t off_cpu = 0;  // off-CPU intervals
};

/// The shape of a stack (its code objects in order, lines aside): FNV-1a, as loopspy_shape_step
/// computes it in the kernel.
std::uint64_t stack_shape(std::span<const loopspy_frame> frames);

class EventSource {
public:
    struct Handlers {
        std::function<void(const RawSample&)> sample;
        std::function<void(const SelectorWait&)> selector_wait;
        std::function<void(const ProcessEvent&)> process;
    };

    virtual ~EventSource() = default;

    /// Starts sampling. `threads` are every thread of the target (and of its recorded
    /// descendants) there now; in per-thread mode each gets its own timer, which the threads they
    /// start later inherit.
    virtual Result<void> start(std::span<const Tid> threads) = 0;
    virtual Result<void> publish_thread_state(Tid tid, RemoteAddr tstate) = 0;
    virtual void forget_thread_state(Tid tid) = 0;
    /// How the kernel finds a process's running task at each sample.
    virtual Result<void> publish_task_finder(Pid pid, const loopspy_task_finder& finder) = 0;
    /// The GILs of a process (each `size` bytes, the holder's thread state `last_holder` bytes in):
    /// a futex sleep inside one is a GIL wait, and the kernel reads who holds it.
    virtual Result<void> publish_gils(Pid pid, std::span<const RemoteAddr> gils, std::uint64_t size,
                                      std::uint64_t last_holder) = 0;
    /// A descendant that existed before recording began: the kernel side samples it from now on
    /// and follows its children (with --subprocesses).
    virtual Result<void> follow_process(Pid pid) = 0;
    /// A followed child is not Python (or not a version recorded here): the kernel side stops
    /// sampling it and still follows its children.
    virtual void stop_sampling(Pid pid) = 0;
    /// A followed child has ended: the kernel side forgets it.
    virtual void forget_process(Pid pid) = 0;

    /// Waits up to timeout_ms, then calls back for every event that arrived; returns how many.
    virtual Result<int> poll(int timeout_ms, const Handlers& handlers) = 0;
    /// Stacks of this shape are named: their samples need not wake poll() early.
    virtual void mark_shape_known(std::uint64_t shape) = 0;

    virtual SamplerStats stats() const = 0;
    /// Samples of threads with no published thread state so far (cheap: for every poll).
    virtual std::uint64_t unknown_thread_samples() const = 0;
    /// Per tid, since the last call: its samples and off-CPU intervals without a thread state.
    virtual std::vector<UnknownThread> take_unknown_threads() = 0;
};

}  // namespace loopspy
