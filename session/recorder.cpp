#include "session/recorder.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "core/clock.hpp"
#include "session/frame_naming.hpp"
#include "symbolizer/process/proc_maps.hpp"
#include "symbolizer/cpython/thread_states.hpp"

namespace loopspy {
namespace {

FrameWalkLayout frame_walk_layout(const PythonLayout& l) {
    auto u32 = [](std::uint64_t v) { return v == kNone ? LOOPSPY_NO_OFFSET : static_cast<std::uint32_t>(v); };
    FrameWalkLayout w{};
    w.tstate_current_frame = u32(l.tstate_current_frame);
    w.tstate_cframe = u32(l.tstate_cframe);
    w.cframe_current_frame = u32(l.cframe_current_frame);
    w.frame_code = u32(l.frame_code);
    w.frame_previous = u32(l.frame_previous);
    w.frame_instr = u32(l.frame_instr);
    w.frame_owner = u32(l.frame_owner);
    w.frame_read_size = LOOPSPY_FRAME_READ_MAX;  // the loader narrows it to what the fields need
    w.code_adaptive = u32(l.code_code_adaptive);
    w.code_tag_mask = l.executable_tag_bits;
    w.owner_cstack = l.owner_cstack;
    w.owner_generator = l.owner_generator;
    return w;
}

constexpr auto kThreadRescan = std::chrono::milliseconds(250);
// Cached code objects are checked again (one small read each) when first used after this long,
// so a freed code object whose address was reused is misnamed for at most this long...
constexpr auto kGeneration = std::chrono::milliseconds(100);
// ...and raw stacks, which skip the symbolizer altogether, are forgotten this often.
constexpr auto kStackCacheLifetime = std::chrono::seconds(1);
// How long to let events collect before draining them. Code objects that run once (module
// bodies at import, eval/exec, shut-down code) can be freed within milliseconds, so a sample of a
// stack shape the kernel side does not know yet wakes the recorder at once (see known_shapes in
// loopspy.bpf.c); everything else waits for kPollMs, which costs the target far less.
constexpr int kPollMs = 50;
// How often the checkpoint (the recording file's flush) runs: a killed recorder loses at most this.
constexpr auto kCheckpoint = std::chrono::milliseconds(1000);
// How often to ask whether the target still runs (a stat of /proc/PID, or waitpid).
constexpr auto kAliveCheck = std::chrono::milliseconds(100);

}  // namespace

std::optional<std::string> unaccounted_cpu_warning(const RecordSummary& summary, const LossCounters& lost,
                                                   Nanoseconds target_cpu, int rate_hz) {
    const double expected = target_cpu.seconds() * rate_hz;
    const std::uint64_t accounted = summary.samples + lost.total() + summary.native_thread_samples;
    if (expected < 20 || static_cast<double>(accounted) >= 0.5 * expected) return std::nullopt;
    char line[320];
    std::snprintf(line, sizeof(line),
                  "warning: the target used %.2f s of CPU while recorded, about %.0f samples at %d Hz, but only %llu "
                  "were recorded or counted as lost: this profile is missing %.0f%% of the target's CPU time",
                  target_cpu.seconds(), expected, rate_hz, static_cast<unsigned long long>(accounted),
                  100.0 * (1.0 - static_cast<double>(accounted) / expected));
    return std::string(line);
}

Recorder::Recorder(Pid pid, Interpreter interp, const RecorderOptions& options, Profile& profile)
    : pid_(pid),
      interp_(std::move(interp)),
      options_(options),
      profile_(profile),
      memory_(pid),
      symbolizer_(memory_, interp_),
      resolver_(symbolizer_, interp_.layout),
      tasks_(memory_, interp_, symbolizer_, resolver_, profile, TaskTrackerOptions{options.task_rate_hz}),
      period_(Nanoseconds{1'000'000'000 / options.rate_hz}) {}

Result<std::unique_ptr<Recorder>> Recorder::attach(Pid pid, Interpreter interp, const RecorderOptions& options,
                                                   Profile& profile) {
    SamplerOptions so;
    so.pid = pid;
    so.rate_hz = options.rate_hz;
    so.mode = options.mode;
    so.layout = frame_walk_layout(interp.layout);
    so.track_off_cpu = options.track_off_cpu;
    LOOPSPY_TRY(std::unique_ptr<Sampler> sampler, Sampler::load(so));
    return start(pid, std::move(interp), options, profile, std::move(sampler));
}

Result<std::unique_ptr<Recorder>> Recorder::start(Pid pid, Interpreter interp, const RecorderOptions& options,
                                                  Profile& profile, std::unique_ptr<EventSource> source) {
    std::unique_ptr<Recorder> r(new Recorder(pid, std::move(interp), options, profile));
    r->sampler_ = std::move(source);
    LOOPSPY_CHECK(r->refresh_threads());
    std::vector<Tid> tids;
    for (const auto& [tid, ts] : r->published_) tids.push_back(tid);
    LOOPSPY_CHECK(r->sampler_->start(tids));
    r->sampling_started_ = true;
    return r;
}

Result<void> Recorder::refresh_threads() {
    auto states = read_thread_states(memory_, interp_);
    if (!states) return {};  // the target may be exiting; try again next time
    std::unordered_map<Tid, RemoteAddr> now;
    for (const auto& ts : *states) now[ts.tid] = ts.tstate;
    for (const auto& [tid, tstate] : now) {
        auto it = published_.find(tid);
        if (it != published_.end() && it->second == tstate) continue;
        LOOPSPY_CHECK(sampler_->publish_thread_state(tid, tstate));
        // A new thread once sampling runs: in per-thread mode it needs its own perf event (the
        // threads known before start() get theirs there).
        if (sampling_started_ && !python_threads_.count(tid)) LOOPSPY_CHECK(sampler_->add_thread(tid));
        python_threads_.insert(tid);
        std::string name = thread_name(pid_, tid);
        if (!name.empty()) profile_.set_thread_name(tid, name);
    }
    for (const auto& [tid, tstate] : published_) {
        if (!now.count(tid)) sampler_->forget_thread_state(tid);
    }
    published_ = std::move(now);
    return {};
}

void Recorder::account_unknown_threads() {
    for (const auto& [tid, n] : sampler_->take_unknown_thread_samples()) {
        if (python_threads_.count(tid)) profile_.lost.no_thread_state += n;
        else native_thread_samples_ += n;
    }
}

void Recorder::on_sample(const RawSample& raw) {
    // The same raw stack (same code objects at the same offsets) names the same way within a
    // validation generation, so it is resolved once.
    key_.assign(reinterpret_cast<const char*>(raw.frames.data()), raw.frames.size_bytes());
    key_.append(reinterpret_cast<const char*>(&raw.flags), sizeof(raw.flags));
    auto it = stack_cache_.find(key_);
    if (it == stack_cache_.end()) {
        std::uint64_t invalidations = symbolizer_.invalidations();
        bool named = resolver_.resolve(raw.frames, resolved_);
        // Naming this stack found a cached code object dead: stacks cached with it are stale.
        if (symbolizer_.invalidations() != invalidations) stack_cache_.clear();
        std::uint32_t flags = named ? 0 : kSampleUnnamed;
        frame_ids_.clear();
        if (raw.flags & LOOPSPY_SAMPLE_TRUNCATED) {
            flags |= kSampleTruncated;
            frame_ids_.push_back(profile_.intern_frame("<truncated>", "", 0, kFrameSpecial));
        }
        if (raw.flags & LOOPSPY_SAMPLE_READ_ERROR) {
            flags |= kSamplePartial;
            frame_ids_.push_back(profile_.intern_frame("<unreadable frames>", "", 0, kFrameSpecial));
        }
        for (auto f = resolved_.rbegin(); f != resolved_.rend(); ++f) frame_ids_.push_back(intern_resolved(profile_, *f));
        StackId stack = profile_.intern_stack(frame_ids_);
        it = stack_cache_.emplace(key_, std::make_pair(stack, flags)).first;
        // Named (or found unnameable) now: samples of this shape no longer wake us early.
        if (!raw.frames.empty()) {
            std::uint64_t shape = stack_shape(raw.frames);
            // Past the kernel map's size its LRU forgets shapes this set still holds: start over,
            // so that a forgotten shape is marked again at its next resolve.
            if (known_shapes_.size() >= LOOPSPY_KNOWN_SHAPES) known_shapes_.clear();
            if (known_shapes_.insert(shape).second) sampler_->mark_shape_known(shape);
        }
    }
    SampleRecord s;
    s.tid = raw.tid;
    s.time = raw.timestamp;
    s.stack = it->second.first;
    s.flags = it->second.second;
    if (raw.coro_frame.value != 0) {
        s.coro = raw.coro_frame.value - interp_.layout.gen_iframe;
        tasks_.saw_coro(s.coro);
    }
    if (raw.kind == LOOPSPY_EVENT_OFF_CPU) {
        s.kind = SampleKind::OffCpu;
        s.weight = raw.duration;
        s.syscall = raw.syscall;
        s.off_flags = (raw.off_flags & LOOPSPY_OFF_PREEMPTED) ? kOffPreempted : 0;
        ++off_cpu_intervals_;
    } else {
        s.kind = SampleKind::OnCpu;
        s.weight = period_;
        ++samples_;
        if (s.flags == 0) ++fully_symbolized_;
    }
    profile_.add_sample(s);
}

void Recorder::on_selector_wait(const SelectorWait& wait) { profile_.add_selector_wait(wait); }

void Recorder::report_status(Nanoseconds elapsed, bool final) {
    if (!options_.on_status) return;
    SamplerStats st = sampler_->stats();
    RecorderStatus status;
    status.pid = pid_;
    status.elapsed = elapsed;
    status.samples = samples_;
    status.lost = st[LOOPSPY_STAT_LOST_RINGBUF] + st[LOOPSPY_STAT_LOST_READ] + profile_.lost.no_thread_state;
    status.threads = published_.size();
    options_.on_status(status, final);
}

Result<RecordSummary> Recorder::run(const std::atomic<bool>& stop_requested, const std::function<bool()>& target_alive,
                                    const std::function<Result<void>()>& checkpoint) {
    using Clock = std::chrono::steady_clock;
    RecordSummary summary;
    Nanoseconds start = monotonic_now();
    profile_.info.start = start;
    auto next_rescan = Clock::now() + kThreadRescan;
    auto next_generation = Clock::now() + kGeneration;
    auto next_stack_cache_clear = Clock::now() + kStackCacheLifetime;
    auto next_status = Clock::now();
    auto next_alive_check = Clock::now();
    auto next_checkpoint = Clock::now() + kCheckpoint;
    EventSource::Handlers cb;
    cb.sample = [this](const RawSample& raw) { on_sample(raw); };
    cb.selector_wait = [this](const SelectorWait& raw) { on_selector_wait(raw); };

    while (true) {
        if (stop_requested.load()) {
            summary.reason = StopReason::Signal;
            break;
        }
        if (options_.duration && monotonic_now() - start >= *options_.duration) {
            summary.reason = StopReason::Duration;
            break;
        }
        if (Clock::now() >= next_alive_check) {
            if (!target_alive()) {
                summary.reason = StopReason::TargetExited;
                break;
            }
            next_alive_check = Clock::now() + kAliveCheck;
        }
        // Wake for the next task snapshot when --task-rate asks for more than the poll rate.
        const auto until_snapshot_ms = tasks_.until_due(monotonic_now()).value / 1'000'000 + 1;
        LOOPSPY_CHECK(sampler_->poll(static_cast<int>(std::min<std::int64_t>(kPollMs, until_snapshot_ms)), cb));
        ++polls_;
        tasks_.tick(monotonic_now());
        auto now = Clock::now();
        // A sample of a thread the kernel has no thread state for means a new Python thread (or
        // a native one): look again at once rather than at the next periodic rescan.
        std::uint64_t no_tstate = sampler_->unknown_thread_samples();
        if (now >= next_rescan || no_tstate != last_no_tstate_) {
            last_no_tstate_ = no_tstate;
            LOOPSPY_CHECK(refresh_threads());
            account_unknown_threads();
            next_rescan = now + kThreadRescan;
        }
        if (now >= next_generation) {
            std::uint64_t invalidations = symbolizer_.invalidations();
            symbolizer_.new_generation();
            // A cached stack may name a code object that has just been found dead.
            if (symbolizer_.invalidations() != invalidations) stack_cache_.clear();
            next_generation = now + kGeneration;
        }
        if (now >= next_stack_cache_clear) {
            stack_cache_.clear();
            next_stack_cache_clear = now + kStackCacheLifetime;
        }
        if (now >= next_checkpoint) {
            if (auto r = checkpoint(); !r) {
                summary.reason = StopReason::CheckpointFailed;
                summary.checkpoint_error = r.error();
                break;
            }
            next_checkpoint = now + kCheckpoint;
        }
        if (now >= next_status) {
            report_status(monotonic_now() - start, false);
            next_status = now + std::chrono::milliseconds(250);
        }
    }
    // A last look at the tasks, so those still alive are known to have lived to the end.
    tasks_.snapshot(monotonic_now());
    // Drain what the kernel already emitted.
    for (int i = 0; i < 64; ++i) {
        auto n = sampler_->poll(0, cb);
        if (!n || *n == 0) break;
    }
    (void)refresh_threads();
    account_unknown_threads();
    Nanoseconds end = monotonic_now();
    profile_.info.end = end;
    report_status(end - start, true);

    SamplerStats st = sampler_->stats();
    profile_.lost.ringbuf_full = st[LOOPSPY_STAT_LOST_RINGBUF];
    profile_.lost.read_failed = st[LOOPSPY_STAT_LOST_READ];
    profile_.lost.off_cpu = st[LOOPSPY_STAT_LOST_OFF_CPU];
    profile_.lost.selector = st[LOOPSPY_STAT_LOST_SELECTOR];
    summary.samples = samples_;
    summary.off_cpu_intervals = off_cpu_intervals_;
    summary.selector_waits = profile_.waits_dropped() + profile_.selector_waits().size();
    summary.fully_symbolized = fully_symbolized_;
    summary.native_thread_samples = native_thread_samples_;
    summary.threads_seen = python_threads_.size();
    summary.elapsed = end - start;
    summary.drains = polls_;
    summary.task_snapshots = tasks_.snapshots();
    summary.most_tasks = tasks_.largest_task_count();
    summary.task_snapshot_time = tasks_.time_spent();
    return summary;
}

}  // namespace loopspy
