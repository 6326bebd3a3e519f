// The user-space half of bpf/loopspy.bpf.c: loads the program with a version's frame layout,
// attaches the cpu-clock sampling, publishes thread states, and hands out the raw samples.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "bpf/loopspy.h"
#include "core/result.hpp"
#include "core/types.hpp"

namespace loopspy {

/// The few facts about a CPython version the kernel side needs to walk frames.
struct FrameWalkLayout {
    std::uint32_t tstate_current_frame = LOOPSPY_NO_OFFSET;  // 3.13+
    std::uint32_t tstate_cframe = LOOPSPY_NO_OFFSET;         // 3.11, 3.12
    std::uint32_t cframe_current_frame = LOOPSPY_NO_OFFSET;  // 3.11, 3.12
    std::uint32_t frame_code = 0;
    std::uint32_t frame_previous = 0;
    std::uint32_t frame_instr = 0;
    std::uint32_t frame_owner = 0;
    std::uint32_t code_adaptive = 0;
    std::uint64_t code_tag_mask = 0;
    std::uint32_t owner_cstack = LOOPSPY_NO_OWNER;
    std::uint32_t owner_generator = LOOPSPY_NO_OWNER;
};

/// How cpu-clock sampling is attached (see README "Sampling design").
enum class SamplingMode {
    PerCpu,     // one event per CPU, the program filters the target's tgid
    PerThread,  // one event per target thread
};

struct SamplerOptions {
    Pid pid;
    int rate_hz = 1000;
    SamplingMode mode = SamplingMode::PerCpu;
    FrameWalkLayout layout;
    bool track_off_cpu = true;  // sched_switch and syscall hooks: off-CPU intervals and selector waits
};

/// One sample or off-CPU interval as the kernel emitted it: frames innermost first.
struct RawSample {
    std::uint32_t kind = 0;  // LOOPSPY_EVENT_ON_CPU or LOOPSPY_EVENT_OFF_CPU
    Tid tid;
    Nanoseconds timestamp;
    std::uint32_t flags = 0;
    std::span<const loopspy_frame> frames;
    Nanoseconds duration;               // OFF_CPU
    std::int32_t syscall = -1;          // OFF_CPU
    std::uint32_t off_flags = 0;        // OFF_CPU
    RemoteAddr coro_frame;              // outermost generator-owned frame walked, 0 if none
};

/// A selector wait as the kernel emitted it (see struct loopspy_selector_event).
struct RawSelectorWait {
    Tid tid;
    std::int32_t syscall = 0;
    Nanoseconds previous_leave, enter, leave;
    std::uint32_t folded_waits = 0;
    Nanoseconds folded_wait_time, folded_busy_time;
};

struct SamplerStats {
    std::uint64_t samples = 0;
    std::uint64_t emitted = 0;
    std::uint64_t lost_ringbuf = 0;
    std::uint64_t lost_read = 0;
    std::uint64_t no_tstate = 0;
    std::uint64_t partial = 0;
    std::uint64_t truncated = 0;
    std::uint64_t off_cpu = 0;
    std::uint64_t lost_off_cpu = 0;
    std::uint64_t selector = 0;
    std::uint64_t lost_selector = 0;
};

class Sampler {
public:
    struct Handlers {
        std::function<void(const RawSample&)> sample;
        std::function<void(const RawSelectorWait&)> selector_wait;
    };

    /// Opens and loads the BPF object; nothing is attached yet.
    static Result<std::unique_ptr<Sampler>> load(const SamplerOptions& options);
    ~Sampler();
    Sampler(const Sampler&) = delete;
    Sampler& operator=(const Sampler&) = delete;

    /// Starts cpu-clock sampling. In per-thread mode, `threads` are the threads to sample;
    /// call add_thread() for threads that appear later.
    Result<void> start(std::span<const Tid> threads);
    Result<void> add_thread(Tid tid);

    Result<void> publish_thread_state(Tid tid, RemoteAddr tstate);
    void forget_thread_state(Tid tid);

    /// Waits timeout_ms (less if the ring buffer fills up), then calls back for every event that
    /// arrived. Returns how many were consumed.
    Result<int> poll(int timeout_ms, const Handlers& handlers);

    /// Tells the kernel side that stacks of this shape (see loopspy_shape_step) are named. Until
    /// then a sample of that shape wakes poll() at once (to name short-lived code before it is
    /// freed); other events collect until poll()'s timeout or a well-filled buffer.
    void mark_shape_known(std::uint64_t shape);
    /// The shape of a sample's stack, as the kernel side computes it.
    static std::uint64_t shape_of(std::span<const loopspy_frame> frames);

    SamplerStats stats() const;
    /// Just LOOPSPY_STAT_NO_TSTATE (one map read, cheap enough for every poll).
    std::uint64_t unknown_thread_samples() const;
    /// Samples of threads that had no published thread state, per tid, since the last call.
    std::vector<std::pair<Tid, std::uint64_t>> take_unknown_thread_samples();

private:
    struct Impl;
    explicit Sampler(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace loopspy
