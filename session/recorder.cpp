#include "session/recorder.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <chrono>
#include <cstring>
#include <cstdio>

#include "core/clock.hpp"
#include "session/frame_naming.hpp"
#include "symbolizer/process/proc_maps.hpp"
#include "symbolizer/cpython/thread_names.hpp"
#include "symbolizer/cpython/thread_states.hpp"
#include "symbolizer/cpython/type_names.hpp"
#include "symbolizer/cpython/pystring.hpp"
#include "symbolizer/cpython/object_layout.hpp"
#include "symbolizer/asyncio/asyncio_tasks.hpp"

namespace loopspy {
namespace {

/// A layout offset as the kernel side takes it: 32 bits, LOOPSPY_NO_OFFSET for one that is absent.
std::uint32_t u32(std::uint64_t v) { return v == kNone ? LOOPSPY_NO_OFFSET : static_cast<std::uint32_t>(v); }

FrameWalkLayout frame_walk_layout(const PythonLayout& l) {
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
    w.gen_iframe = u32(l.gen_iframe);
    w.tstate_frame = u32(l.tstate_frame);
    w.frame_lasti = u32(l.frame_lasti);
    w.lasti_unit = l.lasti_unit;
    w.frame_gen = u32(l.frame_gen);
    w.code_firstlineno = l.frame_lasti != kNone ? u32(l.code_firstlineno) : LOOPSPY_NO_OFFSET;
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

SamplingRate sampling_rate(std::uint64_t delivered, Nanoseconds target_cpu, int rate_hz) {
    SamplingRate r;
    r.requested_hz = rate_hz;
    const double expected = target_cpu.seconds() * rate_hz;
    if (expected < 20) return r;
    r.measured = true;
    r.achieved_hz = static_cast<double>(delivered) / target_cpu.seconds();
    r.share = static_cast<double>(delivered) / expected;
    // The CPU time comes in clock ticks (10 ms) read twice: a deficit within three ticks' worth
    // of samples, or 2%, is the measurement's, not the kernel's.
    const double noise = std::max(0.02 * expected, 0.03 * rate_hz);
    if (expected - static_cast<double>(delivered) > noise) {
        r.undelivered = static_cast<std::uint64_t>(std::llround(expected - static_cast<double>(delivered)));
    }
    return r;
}

std::optional<std::string> rate_line(const SamplingRate& rate, Nanoseconds target_cpu) {
    if (!rate.measured) return std::nullopt;
    char line[600];
    const int achieved = static_cast<int>(std::lround(std::min<double>(rate.achieved_hz, rate.requested_hz)));
    // A warning only for a shortfall the CPU clock can tell (what `undelivered` counts); the rate
    // itself only for a target that ran long enough on its 10 ms clock (0.3 s) to say it.
    if (rate.share >= kAchievedShare || rate.undelivered == 0) {
        if (target_cpu < kRateCpuTime) return std::nullopt;
        std::snprintf(line, sizeof(line), "achieved %d Hz of %d Hz requested (samples per second of the target's %.2f s of CPU)",
                      achieved, rate.requested_hz, target_cpu.seconds());
        return std::string(line);
    }
    std::string limit;
    if (std::FILE* f = std::fopen("/proc/sys/kernel/perf_event_max_sample_rate", "r")) {
        long max_rate = 0;
        if (std::fscanf(f, "%ld", &max_rate) == 1) limit = ", now " + std::to_string(max_rate);
        std::fclose(f);
    }
    // Under half, the loud zero: most of the target's time is not in the profile.
    std::snprintf(line, sizeof(line),
                  "warning: achieved %d Hz of %d Hz requested: the kernel delivered samples for %.0f%% of the "
                  "target's %.2f s of CPU%s (%llu samples counted as lost, never delivered; perf throttles sampling "
                  "above kernel.perf_event_max_sample_rate%s, and when its interrupts take too long)",
                  achieved, rate.requested_hz, 100.0 * rate.share, target_cpu.seconds(),
                  rate.share < 0.5 ? ": this profile is missing most of the target's CPU time" : "",
                  static_cast<unsigned long long>(rate.undelivered), limit.c_str());
    return std::string(line);
}

namespace {

struct AddrPairHash {
    std::size_t operator()(const std::pair<std::uint64_t, std::uint64_t>& p) const noexcept {
        return std::hash<std::uint64_t>()(p.first * 0x9E3779B97F4A7C15ull ^ p.second);
    }
};

}  // namespace

/// One process being recorded: its interpreter, and everything read from its memory.
struct Recorder::Process {
    Process(Pid pid, Interpreter in, Profile& profile, const TaskTrackerOptions& task_options)
        : interp(std::move(in)),
          memory(pid),
          symbolizer(memory, interp),
          resolver(symbolizer, interp.layout),
          tasks(memory, interp, symbolizer, resolver, profile, task_options) {}
    Pid pid() const { return memory.pid(); }

    Interpreter interp;
    RemoteMemory memory;
    CodeSymbolizer symbolizer;
    StackResolver resolver;
    TaskTracker tasks;
    std::unordered_map<Tid, RemoteAddr> published;  // thread states the kernel knows
    std::unordered_map<std::uint64_t, Tid> thread_of_state;  // the same, by thread state
    std::vector<RemoteAddr> gils;                    // the GILs the kernel knows
    std::unordered_map<Tid, int> missing;            // published threads the last reads did not list
    std::optional<TaskFinder> finder;                // how the kernel finds the running task, as published
    TypeNames types{memory, interp.layout};
    /// Tasks the kernel found running, by (task, name object): their name's bytes then, and id.
    struct CapturedTask {
        std::array<std::byte, LOOPSPY_TASK_NAME_BYTES> name_bytes;
        TaskId id;
    };
    std::unordered_map<std::pair<std::uint64_t, std::uint64_t>, CapturedTask, AddrPairHash> captured;
    std::unordered_map<std::string, std::pair<StackId, std::uint32_t>> stack_cache;  // raw frames -> stack, flags
    std::set<Tid> unnamed;                           // threads whose threading name is not read yet
    std::unordered_map<Tid, int> name_tries;         // how often it was looked for
};

Recorder::Recorder(Pid pid, const RecorderOptions& options, Profile& profile)
    : root_(pid), options_(options), profile_(profile), period_(Nanoseconds{1'000'000'000 / options.rate_hz}) {}

Recorder::~Recorder() = default;

Result<std::unique_ptr<Recorder>> Recorder::attach(Pid pid, Interpreter interp, const RecorderOptions& options,
                                                   Profile& profile) {
    SamplerOptions so;
    so.pid = pid;
    so.rate_hz = options.rate_hz;
    so.mode = options.mode;
    so.layout = frame_walk_layout(interp.layout);
    so.track_off_cpu = options.track_off_cpu;
    so.follow_children = options.follow_children;
    so.kernel_features = options.kernel_features;
    LOOPSPY_TRY(std::unique_ptr<Sampler> sampler, Sampler::load(so));
    return start(pid, std::move(interp), options, profile, std::move(sampler));
}

Result<std::unique_ptr<Recorder>> Recorder::start(Pid pid, Interpreter interp, const RecorderOptions& options,
                                                  Profile& profile, std::unique_ptr<EventSource> source) {
    std::unique_ptr<Recorder> r(new Recorder(pid, options, profile));
    r->sampler_ = std::move(source);
    r->layout_ = frame_walk_layout(interp.layout);
    const std::uint64_t image = interp.image;
    LOOPSPY_CHECK(r->add_process(pid, Pid{0}, std::move(interp)));
    // Every thread there now, of the target and (with --subprocesses) its descendants.
    std::vector<Tid> tids = list_threads(pid);
    const std::vector<Pid> children = options.follow_children ? descendants(pid) : std::vector<Pid>{};
    for (Pid child : children) {
        for (Tid tid : list_threads(child)) tids.push_back(tid);
    }
    LOOPSPY_CHECK(r->sampler_->start(tids));
    r->sampling_started_ = true;
    // An exec between reading the interpreter and the kernel's exec hook is an exec all the same.
    if (const auto st = read_process_stat(pid); st && image && st->image != image) {
        r->on_process_event({ProcessEvent::Change::Execed, pid, Pid{0}, monotonic_now()});
    }
    if (options.follow_children) {
        // The descendants there already; those forked from here on arrive as events (a child
        // forked in between is both, and is added once).
        const auto now = std::chrono::steady_clock::now();
        for (Pid child : children) {
            LOOPSPY_CHECK(r->sampler_->follow_process(child));
            const auto st = read_process_stat(child);
            r->pending_.push_back({child, st ? st->parent : Pid{0}, false, now});  // there, or not at all
        }
    }
    return r;
}

void Recorder::notice(const std::string& line) const {
    if (options_.on_notice) options_.on_notice(line);
}

Result<void> Recorder::add_process(Pid pid, Pid parent, Interpreter interp) {
    auto proc = std::make_unique<Process>(pid, std::move(interp), profile_, TaskTrackerOptions{options_.task_rate_hz});
    ProcessRecord rec;
    rec.pid = pid;
    rec.parent = parent;
    rec.command = process_cmdline(pid);
    rec.python = proc->interp.version;
    rec.python_binary = proc->interp.binary_path;
    profile_.set_process(std::move(rec));
    Process& p = *proc;
    processes_[pid] = std::move(proc);
    ++processes_recorded_;
    // Sampled from now on (again, after an exec, during which it was only followed).
    if (pid != root_ && sampling_started_) LOOPSPY_CHECK(sampler_->follow_process(pid));
    return refresh_threads(p);
}

void Recorder::drop_process(Pid pid, bool ended) {
    auto it = processes_.find(pid);
    if (it == processes_.end()) return;
    for (const auto& [tid, tstate] : it->second->published) {
        sampler_->forget_thread_state(tid);
        owner_.erase(tid);
    }
    const TaskTracker& tasks = it->second->tasks;
    dropped_tasks_.snapshots += tasks.snapshots();
    dropped_tasks_.most = std::max(dropped_tasks_.most, tasks.largest_task_count());
    dropped_tasks_.time += tasks.time_spent();
    dropped_tasks_.failed += tasks.failed_snapshots();
    if (!tasks.last_failure().empty()) dropped_tasks_.failure = tasks.last_failure();
    if (pid != root_) {
        if (ended) sampler_->forget_process(pid);
        else sampler_->stop_sampling(pid);
    }
    processes_.erase(it);
}

Result<void> Recorder::refresh_threads() {
    for (auto& [pid, p] : processes_) LOOPSPY_CHECK(refresh_threads(*p));
    return {};
}

Result<void> Recorder::refresh_threads(Process& p) {
    auto states = read_thread_states(p.memory, p.interp);
    if (!states) return {};  // the process may be exiting; try again next time
    // Its GILs (a new subinterpreter may bring one), so that a thread waiting to take one is
    // known as such at the instant it goes to sleep.
    if (std::vector<RemoteAddr> gils = read_gils(p.memory, p.interp); !gils.empty() && gils != p.gils) {
        LOOPSPY_CHECK(sampler_->publish_gils(p.pid(), gils, p.interp.layout.gil_size, p.interp.layout.gil_last_holder));
        p.gils = std::move(gils);
    }
    std::unordered_map<Tid, RemoteAddr> now;
    std::unordered_map<Tid, Tid> own_ids;
    for (const auto& ts : *states) {
        now[ts.tid] = ts.tstate;
        own_ids[ts.tid] = ts.own_tid;
    }
    bool fresh = false;
    for (const auto& [tid, tstate] : now) {
        auto it = p.published.find(tid);
        if (it != p.published.end() && it->second == tstate) continue;
        LOOPSPY_CHECK(sampler_->publish_thread_state(tid, tstate));
        owner_[tid] = &p;
        python_threads_.insert(tid);
        profile_.set_thread_process(tid, p.pid());
        p.unnamed.insert(tid);
        fresh = true;
    }
    // Names: the program's (threading), else the OS's. A thread's Thread object may not have its
    // native id yet when its thread state appears: it is asked again at the next look.
    if (fresh || !p.unnamed.empty()) {
        const std::unordered_map<Tid, std::string> given = read_threading_names(p.memory, p.interp);
        for (auto it = p.unnamed.begin(); it != p.unnamed.end();) {
            const Tid tid = *it;
            auto own = own_ids.find(tid);
            auto named = own != own_ids.end() ? given.find(own->second) : given.end();
            std::string name = named != given.end() ? named->second : thread_name(p.pid(), tid);
            if (!name.empty() && profile_.thread_name(tid) != name) profile_.set_thread_name(tid, name);
            // Asked again only while the thread lives and `threading` may yet name it: a few
            // times once `threading` names other threads, for a minute of reads while it names
            // none (a launched program is recorded from before its start imports it).
            const int tries = ++p.name_tries[tid];
            const bool settled = named != given.end() || !now.count(tid) || tries >= (given.empty() ? 600 : 8);
            if (settled) {
                p.name_tries.erase(tid);
                it = p.unnamed.erase(it);
            } else {
                ++it;
            }
        }
    }
    // A thread missing from one read of the list (read while the list changed, or /proc failed
    // us for a moment) keeps its thread state: forgotten, its samples and off-CPU intervals would
    // be lost until the next read. It goes when its thread is gone, or missing from two reads.
    for (const auto& [tid, tstate] : p.published) {
        if (now.count(tid)) {
            p.missing.erase(tid);
            continue;
        }
        if (thread_exists(p.pid(), tid) && ++p.missing[tid] < 2) {
            now.emplace(tid, tstate);
            continue;
        }
        p.missing.erase(tid);
        sampler_->forget_thread_state(tid);
        auto o = owner_.find(tid);
        if (o != owner_.end() && o->second == &p) owner_.erase(o);
    }
    p.published = std::move(now);
    p.thread_of_state.clear();
    for (const auto& [tid, tstate] : p.published) p.thread_of_state[tstate.value] = tid;
    return {};
}

void Recorder::on_process_event(const ProcessEvent& e) {
    const auto now = std::chrono::steady_clock::now();
    if (e.change == ProcessEvent::Change::Forked) {
        // A fork is a copy of a recorded process: its interpreter is there at once, unless it has
        // exec'd already (its exec event may still be on its way): then it gets an exec's time.
        pending_.push_back({e.pid, e.parent, false, now + std::chrono::seconds(2)});
        return;
    }
    // An exec: the old program's memory is gone. The new one maps its interpreter (if any) while
    // its dynamic loader runs, within milliseconds.
    auto it = processes_.find(e.pid);
    Pid parent{0};
    if (it != processes_.end()) {
        auto rec = profile_.processes().find(e.pid);
        if (rec != profile_.processes().end()) parent = rec->second.parent;
        drop_process(e.pid, false);
    }
    std::erase_if(pending_, [&](const Pending& p) { return p.pid == e.pid; });
    pending_.push_back({e.pid, parent, true, now + std::chrono::seconds(2)});
}

bool Recorder::handle_process_changes() {
    const auto now = std::chrono::steady_clock::now();
    std::vector<Pending> still;
    for (const Pending& p : pending_) {
        switch (settle(p, now)) {
            case Settled::Waiting: still.push_back(p); break;
            case Settled::RootLeftPython: return false;
            case Settled::Done: break;
        }
    }
    pending_ = std::move(still);
    return true;
}

Recorder::Settled Recorder::settle(const Pending& p, std::chrono::steady_clock::time_point now) {
    if (processes_.count(p.pid)) return Settled::Done;  // already recorded (a fork seen twice)
    if (!process_running(p.pid)) {
        if (p.pid == root_) return Settled::RootLeftPython;
        sampler_->forget_process(p.pid);
        return Settled::Done;
    }
    RemoteMemory memory(p.pid);
    Result<Interpreter> interp = find_interpreter(p.pid, memory);
    std::string why;
    if (interp) {
        const FrameWalkLayout layout = frame_walk_layout(interp->layout);
        if (std::memcmp(&layout_, &layout, sizeof(layout_)) != 0) {
            why = "runs Python " + interp->version.text() + ", and one recording holds one Python version";
        } else if (auto r = add_process(p.pid, p.parent, std::move(interp).value()); r) {
            const std::string command = process_cmdline(p.pid);
            notice(p.exec ? "process " + std::to_string(p.pid.value) + " exec'd " + command + ": recording it on"
                          : "recording child " + std::to_string(p.pid.value) + " of " + std::to_string(p.parent.value) +
                                ": " + command);
            return Settled::Done;
        } else {
            why = r.error().message;
        }
    } else if (now < p.give_up) {
        return Settled::Waiting;  // an exec'd program's interpreter may not be mapped yet
    } else {
        why = interp.error().message;
    }
    ++processes_not_python_;
    if (p.pid == root_) {
        notice("process " + std::to_string(p.pid.value) + " exec'd " + process_cmdline(p.pid) +
               ", which loopspy cannot record (" + why + "): the recording ends here");
        return Settled::RootLeftPython;
    }
    notice("not recording " + std::string(p.exec ? "process " : "child ") + std::to_string(p.pid.value) + " (" +
           process_cmdline(p.pid) + "): " + why);
    sampler_->stop_sampling(p.pid);
    return Settled::Done;
}

Recorder::Process* Recorder::process_of(const RawSample& raw) {
    if (auto owner = owner_.find(raw.tid); owner != owner_.end()) return owner->second;
    // A thread of a recorded process whose threads were not listed yet (its first look failed,
    // or it started since): the kernel walked its stack with its process's thread state.
    if (auto it = processes_.find(raw.pid); it != processes_.end()) return it->second.get();
    // Without --subprocesses every event the kernel sends is the target's.
    if (!options_.follow_children) {
        auto root = processes_.find(root_);
        return root != processes_.end() ? root->second.get() : nullptr;
    }
    // A child forked since the last poll, whose first events come in the same batch as its fork:
    // it is read now, so they are named rather than dropped.
    auto pending = std::find_if(pending_.begin(), pending_.end(),
                                [&](const Pending& p) { return p.pid == raw.pid && !p.exec; });
    if (pending == pending_.end()) return nullptr;
    const Pending p = *pending;
    pending_.erase(pending);
    switch (settle(p, std::chrono::steady_clock::now())) {
        case Settled::Waiting: pending_.push_back(p); break;
        case Settled::RootLeftPython: root_left_python_ = true; break;
        case Settled::Done: break;
    }
    auto it = processes_.find(raw.pid);
    return it != processes_.end() ? it->second.get() : nullptr;
}

void Recorder::check_children() {
    // Found gone at the previous check: every event it emitted before it exited has been drained
    // since (the ring buffer is polled several times between two checks), so it goes now. A
    // process dropped the moment it is seen gone would lose its last events, emitted just before
    // it exited and still in the ring buffer: a worker's last stall, seen as "unreadable".
    for (Pid pid : exited_) drop_process(pid, true);
    exited_.clear();
    for (const auto& [pid, p] : processes_) {
        if (pid != root_ && !process_running(pid)) exited_.push_back(pid);
    }
}

void Recorder::account_unknown_threads() {
    for (const UnknownThread& t : sampler_->take_unknown_threads()) {
        if (python_threads_.count(t.tid)) {
            profile_.lost.no_thread_state += t.samples;
            untracked_off_cpu_ += t.off_cpu;
        } else {
            native_thread_samples_ += t.samples;
        }
    }
}

void Recorder::on_sample(const RawSample& raw) {
    Process* found = process_of(raw);
    if (!found) {
        // Its process was dropped (it exec'd or ended) while the event was on its way.
        ++orphan_events_;
        return;
    }
    Process& p = *found;
    // The same raw stack (same code objects at the same offsets) names the same way within a
    // validation generation, so it is resolved once.
    key_.assign(reinterpret_cast<const char*>(raw.frames.data()), raw.frames.size_bytes());
    key_.append(reinterpret_cast<const char*>(&raw.flags), sizeof(raw.flags));
    auto& stack_cache = p.stack_cache;
    auto it = stack_cache.find(key_);
    if (it == stack_cache.end()) {
        std::uint64_t invalidations = p.symbolizer.invalidations();
        bool named = p.resolver.resolve(raw.frames, resolved_);
        // Naming this stack found a cached code object dead: stacks cached with it are stale.
        if (p.symbolizer.invalidations() != invalidations) stack_cache.clear();
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
        it = stack_cache.emplace(key_, std::make_pair(stack, flags)).first;
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
    if (raw.coro.value != 0) {
        s.coro = raw.coro.value;
        p.tasks.saw_coro(s.coro);
        if (raw.task.value != 0) s.task = captured_task(p, raw, s.coro);
    }
    if (raw.kind == LOOPSPY_EVENT_OFF_CPU) {
        s.kind = SampleKind::OffCpu;
        s.weight = raw.duration;
        s.syscall = raw.syscall;
        s.off_flags = ((raw.off_flags & LOOPSPY_OFF_PREEMPTED) ? kOffPreempted : 0) |
                      ((raw.off_flags & LOOPSPY_OFF_GIL) ? kOffGil : 0);
        if ((s.off_flags & kOffGil) && raw.gil_holder.value != 0) {
            // Who held it: a thread of the process whose state the kernel knows (not the waiter,
            // which would mean the holder had just let go and the GIL was free).
            auto h = p.thread_of_state.find(raw.gil_holder.value);
            if (h != p.thread_of_state.end() && h->second != raw.tid) s.gil_holder = h->second;
        }
        ++off_cpu_intervals_;
    } else {
        s.kind = SampleKind::OnCpu;
        s.weight = period_;
        ++samples_;
        if (s.flags == 0) ++fully_symbolized_;
    }
    profile_.add_sample(s);
}

void Recorder::publish_task_finder(Process& p) {
    std::optional<TaskFinder> f = p.tasks.task_finder();
    if (!f || f == p.finder) return;
    const PythonLayout& l = p.interp.layout;
    loopspy_task_finder k{};
    k.current_tasks = f->current_tasks.value;
    k.tstate_running_task = static_cast<__u32>(f->tstate_running_task);
    k.task_coro = static_cast<__u32>(f->task_coro);
    k.task_name = static_cast<__u32>(f->task_name);
    k.dict_keys = static_cast<__u32>(l.dict_keys);
    k.keys_log2_index_bytes = u32(l.dictkeys_log2_index_bytes);
    k.keys_size = u32(l.dictkeys_size);
    k.keys_nentries = static_cast<__u32>(l.dictkeys_nentries);
    k.keys_indices = static_cast<__u32>(l.dictkeys_indices);
    k.entry_size = static_cast<__u32>(l.dictentry_size);
    k.entry_value = static_cast<__u32>(l.dictentry_value);
    if (sampler_->publish_task_finder(p.pid(), k).ok()) p.finder = f;
}

std::uint32_t Recorder::captured_task(Process& p, const RawSample& raw, std::uint64_t coro) {
    std::array<std::byte, LOOPSPY_TASK_NAME_BYTES> bytes{};
    std::copy_n(raw.task_name_bytes.begin(), std::min(bytes.size(), raw.task_name_bytes.size()), bytes.begin());
    const auto key = std::make_pair(raw.task.value, raw.task_name_obj.value);
    if (auto it = p.captured.find(key); it != p.captured.end() && it->second.name_bytes == bytes) return it->second.id + 1;
    // Named from the bytes the kernel copied at the instant (the task may be gone by now): a str,
    // or (3.12+, unnamed tasks) the int counter of "Task-N". A str too long for them is read
    // whole while the task may still live.
    std::optional<std::string> name;
    if (raw.task_name_obj.value != 0) {
        const RemoteAddr type{load_at<std::uint64_t>(bytes, p.interp.layout.object_type).value_or(0)};
        const std::string& type_name = p.types.of_type(type);
        if (type_name == "str") {
            const UnicodeLayout unicode = unicode_layout_of(p.interp.layout);
            if (auto s = decode_pystring(bytes, unicode, 200)) {
                name = std::move(*s);
            } else {
                std::vector<std::byte> whole = p.memory.read_prefix(raw.task_name_obj, 1024);
                if (auto w = decode_pystring(whole, unicode, 200)) name = std::move(*w);
            }
        } else if (type_name == "int") {
            if (const ObjectLayout* o = object_layout(p.interp.version.minor())) name = counter_task_name(bytes, o->long_header);
        }
    }
    if (!name) {
        ++unnamed_captured_tasks_;
        return 0;
    }
    TaskRecord rec;
    rec.addr = raw.task.value;
    rec.coro = coro;
    rec.name = profile_.intern_task_string(*name);
    rec.coro_name = profile_.intern_string("");
    rec.pid = p.pid();
    const TaskId id = profile_.intern_task(rec);
    if (p.captured.size() >= 65536) p.captured.clear();
    p.captured[key] = {bytes, id};
    return id + 1;
}

void Recorder::on_selector_wait(const SelectorWait& wait) { profile_.add_selector_wait(wait); }

void Recorder::report_status(Nanoseconds elapsed, bool final) {
    if (!options_.on_status) return;
    SamplerStats st = sampler_->stats();
    RecorderStatus status;
    status.pid = root_;
    status.elapsed = elapsed;
    status.samples = samples_;
    status.lost = st[LOOPSPY_STAT_LOST_RINGBUF] + st[LOOPSPY_STAT_LOST_READ] + profile_.lost.no_thread_state;
    status.threads = owner_.size();
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
    cb.process = [this](const ProcessEvent& e) { on_process_event(e); };
    // The task tracker that sets the pace: the root's (every process's ticks all the same).
    auto earliest_snapshot = [this]() {
        Nanoseconds soonest{INT64_MAX};
        const Nanoseconds now = monotonic_now();
        for (const auto& [pid, p] : processes_) soonest = std::min(soonest, p->tasks.until_due(now));
        return soonest;
    };

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
            check_children();
            next_alive_check = Clock::now() + kAliveCheck;
        }
        // Wake for the next task snapshot when --task-rate asks for more than the poll rate, and
        // soon for a process whose exec'd program is not mapped yet.
        std::int64_t wait_ms = std::min<std::int64_t>(kPollMs, earliest_snapshot().value / 1'000'000 + 1);
        if (!pending_.empty()) wait_ms = std::min<std::int64_t>(wait_ms, 5);
        LOOPSPY_CHECK(sampler_->poll(static_cast<int>(wait_ms), cb));
        ++polls_;
        if (root_left_python_ || (!pending_.empty() && !handle_process_changes())) {
            summary.reason = StopReason::TargetLeftPython;
            break;
        }
        for (auto& [pid, p] : processes_) {
            p->tasks.tick(monotonic_now());
            publish_task_finder(*p);
        }
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
            for (auto& [pid, p] : processes_) {
                std::uint64_t invalidations = p->symbolizer.invalidations();
                p->symbolizer.new_generation();
                // A cached stack may name a code object that has just been found dead.
                if (p->symbolizer.invalidations() != invalidations) p->stack_cache.clear();
            }
            next_generation = now + kGeneration;
        }
        if (now >= next_stack_cache_clear) {
            for (auto& [pid, p] : processes_) p->stack_cache.clear();
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
    for (auto& [pid, p] : processes_) p->tasks.snapshot(monotonic_now());
    // Drain what the kernel already emitted.
    for (int i = 0; i < 64; ++i) {
        auto n = sampler_->poll(0, cb);
        if (!n || *n == 0) break;
    }
    (void)refresh_threads();
    account_unknown_threads();
    {
        // The per-thread counts live in an LRU map that a target making thousands of threads
        // overflows: what it evicted is in the kernel's total all the same, and was a thread
        // never seen with a thread state.
        const std::uint64_t total = sampler_->unknown_thread_samples();
        const std::uint64_t placed = profile_.lost.no_thread_state + native_thread_samples_;
        if (total > placed) native_thread_samples_ += total - placed;
    }
    Nanoseconds end = monotonic_now();
    profile_.info.end = end;
    report_status(end - start, true);

    SamplerStats st = sampler_->stats();
    profile_.lost.ringbuf_full = st[LOOPSPY_STAT_LOST_RINGBUF];
    // Events of a process dropped while they were on their way could not be named.
    profile_.lost.read_failed = st[LOOPSPY_STAT_LOST_READ] + orphan_events_;
    // A Python thread that left the CPU while its thread state was not published (yet, or for a
    // moment) had no stack to keep: that interval is lost like one the kernel had no room for.
    profile_.lost.off_cpu = st[LOOPSPY_STAT_LOST_OFF_CPU] + untracked_off_cpu_;
    profile_.lost.selector = st[LOOPSPY_STAT_LOST_SELECTOR];
    summary.samples = samples_;
    summary.off_cpu_intervals = off_cpu_intervals_;
    summary.selector_waits = profile_.waits_dropped() + profile_.selector_waits().size();
    summary.fully_symbolized = fully_symbolized_;
    summary.native_thread_samples = native_thread_samples_;
    summary.threads_seen = python_threads_.size();
    summary.elapsed = end - start;
    summary.drains = polls_;
    summary.processes_recorded = processes_recorded_;
    summary.processes_not_python = processes_not_python_;
    for (const auto& [pid, p] : processes_) {
        summary.task_snapshots += p->tasks.snapshots();
        summary.most_tasks = std::max(summary.most_tasks, p->tasks.largest_task_count());
        summary.task_snapshot_time += p->tasks.time_spent();
        summary.failed_task_snapshots += p->tasks.failed_snapshots();
        if (!p->tasks.last_failure().empty()) summary.task_failure = p->tasks.last_failure();
    }
    summary.failed_task_snapshots += dropped_tasks_.failed;
    if (summary.task_failure.empty()) summary.task_failure = dropped_tasks_.failure;
    summary.task_snapshots += dropped_tasks_.snapshots;
    summary.most_tasks = std::max(summary.most_tasks, dropped_tasks_.most);
    summary.task_snapshot_time += dropped_tasks_.time;
    return summary;
}

}  // namespace loopspy
