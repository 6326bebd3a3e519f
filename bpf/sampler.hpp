// The user-space half of bpf/loopspy.bpf.c: loads the program with a version's frame layout,
// attaches the cpu-clock sampling, publishes thread states, and hands out the raw samples.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "bpf/event_source.hpp"
#include "bpf/kernel_features.hpp"
#include "bpf/loopspy.h"
#include "core/result.hpp"
#include "core/types.hpp"

namespace loopspy {

/// The few facts about a CPython version the kernel side needs to walk frames (loopspy.h).
using FrameWalkLayout = loopspy_frame_layout;

/// How cpu-clock sampling is attached (see README "How sampling is attached").
enum class SamplingMode {
    PerCpu,     // one event per CPU, the program filters the target's tgid
    PerThread,  // one event per target thread
};

/// The highest sampling rate loopspy accepts, per thread (the kernel's default
/// perf_event_max_sample_rate); `-r` is checked against it, and so is the sampler.
inline constexpr int kMaxRateHz = 100'000;

struct SamplerOptions {
    Pid pid;
    int rate_hz = 1000;
    SamplingMode mode = SamplingMode::PerCpu;
    FrameWalkLayout layout{};
    bool track_off_cpu = true;  // sched_switch and syscall hooks: off-CPU intervals and selector waits
    bool follow_children = false;  // --subprocesses: sample every descendant from its fork on
    /// What the kernel gives, as probed by the caller before it launched anything (empty: the
    /// sampler probes it itself).
    std::vector<KernelFeature> kernel_features;
};

class Sampler final : public EventSource {
public:
    /// Opens and loads the BPF object; nothing is attached yet.
    static Result<std::unique_ptr<Sampler>> load(const SamplerOptions& options);
    ~Sampler() override;
    Sampler(const Sampler&) = delete;
    Sampler& operator=(const Sampler&) = delete;

    /// Starts cpu-clock sampling. In per-thread mode, `threads` are the threads to sample (every
    /// thread there now); the threads they start later inherit their events.
    Result<void> start(std::span<const Tid> threads) override;

    Result<void> publish_thread_state(Tid tid, RemoteAddr tstate) override;
    Result<void> publish_task_finder(Pid pid, const loopspy_task_finder& finder) override;
    Result<void> publish_gils(Pid pid, std::span<const RemoteAddr> gils, std::uint64_t size,
                              std::uint64_t last_holder) override;
    void forget_thread_state(Tid tid) override;
    Result<void> follow_process(Pid pid) override;
    void stop_sampling(Pid pid) override;
    void forget_process(Pid pid) override;

    /// Waits timeout_ms (less if the ring buffer fills up), then calls back for every event that
    /// arrived. Returns how many were consumed.
    Result<int> poll(int timeout_ms, const Handlers& handlers) override;

    /// Tells the kernel side that stacks of this shape (see loopspy_shape_step) are named. Until
    /// then a sample of that shape wakes poll() at once (to name short-lived code before it is
    /// freed); other events collect until poll()'s timeout or a well-filled buffer.
    void mark_shape_known(std::uint64_t shape) override;

    SamplerStats stats() const override;
    std::uint64_t unknown_thread_samples() const override;
    std::vector<UnknownThread> take_unknown_threads() override;

private:
    struct Impl;
    explicit Sampler(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace loopspy
