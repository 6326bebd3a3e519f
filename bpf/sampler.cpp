#include "bpf/sampler.hpp"

#include "bpf/kernel_features.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <fstream>
#include <map>
#include <string>

#include "bpf/kernel_features.hpp"
#include "core/unique_fd.hpp"
#include "loopspy.skel.h"

namespace loopspy {
namespace {

std::string& libbpf_log() {
    static std::string log;
    return log;
}

int capture_libbpf_output(enum libbpf_print_level level, const char* fmt, va_list args) {
    if (level == LIBBPF_DEBUG && !std::getenv("LOOPSPY_BPF_DEBUG")) return 0;
    char line[1024];
    int n = std::vsnprintf(line, sizeof(line), fmt, args);
    if (std::getenv("LOOPSPY_BPF_DEBUG")) std::fputs(line, stderr);
    std::string& log = libbpf_log();
    if (log.size() < 64 * 1024) log.append(line);
    return n;
}

/// The last libbpf message worth showing: its last non-empty line.
std::string last_libbpf_message() {
    const std::string& log = libbpf_log();
    std::size_t end = log.find_last_not_of("\n ");
    if (end == std::string::npos) return {};
    std::size_t begin = log.rfind('\n', end);
    begin = begin == std::string::npos ? 0 : begin + 1;
    return log.substr(begin, end - begin + 1);
}

Error bpf_error(const char* what, int err) {
    err = err < 0 ? -err : err;
    if (err == EPERM || err == EACCES) {
        return make_error(ErrorKind::NoPrivilege,
                          std::string(what) + ": permission denied (need root, or CAP_BPF + CAP_PERFMON + CAP_SYS_PTRACE)");
    }
    std::string msg = std::string(what) + ": " + std::strerror(err);
    if (std::string detail = last_libbpf_message(); !detail.empty()) msg += " (" + detail + ")";
    return make_error(ErrorKind::Bpf, msg);
}

/// Per-thread sampling holds one perf event per thread the target has at start (and loopspy's own
/// files besides): the soft limit on open files is raised to the hard one, as perf does; past that,
/// the user is told what to raise.
constexpr std::size_t kFdsBesidesEvents = 256;

Result<void> room_for_events(std::size_t events) {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return {};
    const rlim_t need = static_cast<rlim_t>(events + kFdsBesidesEvents);
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < need) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < need) {
        return make_error(ErrorKind::Bpf,
                          "per-thread sampling needs a file descriptor for each of the target's " + std::to_string(events) +
                              " threads, and the limit is " + std::to_string(lim.rlim_cur) +
                              ": raise it (ulimit -n) or use --sampling per-cpu");
    }
    return {};
}

std::vector<int> online_cpus() {
    std::vector<int> cpus;
    std::ifstream in("/sys/devices/system/cpu/online");
    std::string text;
    std::getline(in, text);
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t comma = text.find(',', pos);
        std::string part = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        std::size_t dash = part.find('-');
        try {
            int lo = std::stoi(part.substr(0, dash));
            int hi = dash == std::string::npos ? lo : std::stoi(part.substr(dash + 1));
            for (int c = lo; c <= hi; ++c) cpus.push_back(c);
        } catch (...) {
        }
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    if (cpus.empty()) {
        for (int c = 0; c < libbpf_num_possible_cpus(); ++c) cpus.push_back(c);
    }
    return cpus;
}

/// The PID namespace whose ids /proc shows (that of its pid 1; loopspy's own as a fallback), as the
/// kernel side's viewer_pidns: 0 for the initial namespace, whose ids the kernel has at hand.
std::uint32_t viewer_pid_namespace() {
    constexpr std::uint64_t kInitialPidNamespace = 0xEFFFFFFCu;  // PROC_PID_INIT_INO
    struct stat st {};
    if (::stat("/proc/1/ns/pid", &st) != 0 && ::stat("/proc/self/ns/pid", &st) != 0) return 0;
    return st.st_ino == kInitialPidNamespace ? 0 : static_cast<std::uint32_t>(st.st_ino);
}

struct SkeletonDeleter {
    void operator()(loopspy_bpf* skel) const { loopspy_bpf__destroy(skel); }
};
struct LinkDeleter {
    void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
struct RingBufferDeleter {
    void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};

}  // namespace

struct Sampler::Impl {
    SamplerOptions options;
    std::unique_ptr<loopspy_bpf, SkeletonDeleter> skel;
    std::unique_ptr<ring_buffer, RingBufferDeleter> ring;
    // Links before fds: a link is destroyed (detached) before its perf event fd is closed.
    std::vector<UniqueFd> perf_fds;
    std::vector<std::unique_ptr<bpf_link, LinkDeleter>> links;
    const Handlers* handlers = nullptr;

    ~Impl() {
        links.clear();
        perf_fds.clear();
    }

    Result<void> attach_event(int pid, int cpu) {
        perf_event_attr attr{};
        attr.size = sizeof(attr);
        attr.type = PERF_TYPE_SOFTWARE;
        attr.config = PERF_COUNT_SW_CPU_CLOCK;
        attr.sample_period = 1'000'000'000ull / static_cast<unsigned>(options.rate_hz);
        attr.freq = 0;
        // Per thread: threads (and, with --subprocesses, processes) the thread starts later get a
        // copy of its event from their first instant, the BPF program included.
        attr.inherit = pid > 0 ? 1 : 0;
        int fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC));
        if (fd < 0) {
            int err = errno;
            // A thread that exited between listing and attaching is not an error.
            if (pid > 0 && err == ESRCH) return {};
            if (err == EMFILE || err == ENFILE) {
                return make_error(ErrorKind::Bpf, "perf_event_open: out of file descriptors after " +
                                                      std::to_string(perf_fds.size()) +
                                                      " events: raise the limit (ulimit -n) or use --sampling per-cpu");
            }
            return bpf_error("perf_event_open", err);
        }
        UniqueFd owned(fd);
        bpf_link* link = bpf_program__attach_perf_event(skel->progs.on_cpu_sample, fd);
        if (!link) return bpf_error("attaching the sampler", errno);
        perf_fds.push_back(std::move(owned));
        links.emplace_back(link);
        return {};
    }

    static int on_event(void* ctx, void* data, size_t size) {
        auto* self = static_cast<Impl*>(ctx);
        if (size < sizeof(__u32)) return 0;
        __u32 kind;
        std::memcpy(&kind, data, sizeof(kind));
        if (kind == LOOPSPY_EVENT_PROCESS) {
            if (size < sizeof(loopspy_process_event)) return 0;
            loopspy_process_event ev;
            std::memcpy(&ev, data, sizeof(ev));
            ProcessEvent e;
            e.change = ev.change == LOOPSPY_PROCESS_EXECED ? ProcessEvent::Change::Execed : ProcessEvent::Change::Forked;
            e.pid = Pid{static_cast<std::int32_t>(ev.pid)};
            e.parent = Pid{static_cast<std::int32_t>(ev.parent)};
            e.timestamp = Nanoseconds{static_cast<std::int64_t>(ev.ts_ns)};
            if (self->handlers->process) self->handlers->process(e);
            return 0;
        }
        if (kind == LOOPSPY_EVENT_SELECTOR) {
            if (size < sizeof(loopspy_selector_event)) return 0;
            loopspy_selector_event ev;
            std::memcpy(&ev, data, sizeof(ev));
            SelectorWait w;
            w.tid = Tid{static_cast<std::int32_t>(ev.tid)};
            w.syscall = ev.syscall;
            w.previous_leave = Nanoseconds{static_cast<std::int64_t>(ev.previous_leave_ns)};
            w.enter = Nanoseconds{static_cast<std::int64_t>(ev.enter_ns)};
            w.leave = Nanoseconds{static_cast<std::int64_t>(ev.leave_ns)};
            w.folded_waits = ev.folded_waits;
            w.folded_wait_time = Nanoseconds{static_cast<std::int64_t>(ev.folded_wait_ns)};
            w.folded_busy_time = Nanoseconds{static_cast<std::int64_t>(ev.folded_busy_ns)};
            if (self->handlers->selector_wait) self->handlers->selector_wait(w);
            return 0;
        }
        if (size < sizeof(loopspy_sample_header)) return 0;
        const auto* ev = static_cast<const loopspy_sample*>(data);
        std::size_t nframes = ev->h.nframes;
        std::size_t room = (size - sizeof(loopspy_sample_header)) / sizeof(loopspy_frame);
        if (nframes > room) nframes = room;
        RawSample sample;
        sample.kind = ev->h.kind;
        sample.tid = Tid{static_cast<std::int32_t>(ev->h.tid)};
        sample.pid = Pid{static_cast<std::int32_t>(ev->h.pid)};
        sample.timestamp = Nanoseconds{static_cast<std::int64_t>(ev->h.ts_ns)};
        sample.flags = ev->h.flags;
        sample.frames = std::span<const loopspy_frame>(ev->frames, nframes);
        sample.duration = Nanoseconds{static_cast<std::int64_t>(ev->h.duration_ns)};
        sample.syscall = ev->h.syscall;
        sample.off_flags = ev->h.off_flags;
        sample.coro = RemoteAddr{ev->h.coro};
        sample.task = RemoteAddr{ev->h.task};
        sample.task_name_obj = RemoteAddr{ev->h.task_name_obj};
        sample.gil_holder = RemoteAddr{ev->h.gil_holder};
        sample.task_name_bytes = std::as_bytes(std::span(ev->h.task_name));
        if (self->handlers->sample) self->handlers->sample(sample);
        return 0;
    }

    /// The off-CPU and selector programs this kernel gets (the rest are not loaded).
    /// The process hooks: exec always (a target that exec's is re-read), fork with --subprocesses.
    std::vector<bpf_program*> process_hooks() const {
        const auto& p = skel->progs;
        std::vector<bpf_program*> hooks{use_tp_btf ? p.on_exec_btf : p.on_exec_raw};
        if (options.follow_children) hooks.push_back(use_tp_btf ? p.on_fork_btf : p.on_fork_raw);
        return hooks;
    }

    std::vector<bpf_program*> scheduler_hooks() const {
        const auto& p = skel->progs;
        std::vector<bpf_program*> hooks{use_tp_btf ? p.on_switch_btf : p.on_switch_raw};
        if (use_fentry) {
            hooks.insert(hooks.end(), {p.epoll_entered, p.epoll_left, p.poll_entered, p.poll_left, p.select_entered,
                                       p.select_left});
        } else {
            hooks.insert(hooks.end(), {p.on_sys_enter, p.on_sys_exit});
        }
        return hooks;
    }

    /// Attaches each program at the point its section names; `what` says which, should one fail.
    Result<void> attach_all(const std::vector<bpf_program*>& programs, const char* what) {
        for (bpf_program* prog : programs) {
            bpf_link* link = bpf_program__attach(prog);
            if (!link) return bpf_error(what, errno);
            links.emplace_back(link);
        }
        return {};
    }

    bool use_tp_btf = true;
    bool use_fentry = true;
};

Sampler::Sampler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sampler::~Sampler() = default;

Result<std::unique_ptr<Sampler>> Sampler::load(const SamplerOptions& options) {
    libbpf_set_print(capture_libbpf_output);
    if (options.rate_hz <= 0 || options.rate_hz > kMaxRateHz) {
        return make_error(ErrorKind::BadInput, "--rate must be between 1 and " + std::to_string(kMaxRateHz) + " Hz");
    }
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    impl->skel.reset(loopspy_bpf__open());
    if (!impl->skel) return bpf_error("opening the BPF object", errno);

    auto* ro = impl->skel->rodata;
    FrameWalkLayout l = options.layout;
    ro->target_tgid = static_cast<__u32>(options.pid.value);
    auto field_end = [](std::uint32_t off, std::uint32_t size) { return off == LOOPSPY_NO_OFFSET ? 0 : off + size; };
    std::uint32_t read_size = std::max({field_end(l.frame_code, 8), field_end(l.frame_previous, 8),
                                        field_end(l.frame_instr, 8), field_end(l.frame_owner, 1),
                                        field_end(l.frame_lasti, 4), field_end(l.frame_gen, 8)});
    if (read_size > LOOPSPY_FRAME_READ_MAX) {
        return make_error(ErrorKind::UnsupportedPython, "frame layout does not fit the BPF frame buffer");
    }
    l.frame_read_size = read_size;
    std::memcpy(const_cast<loopspy_frame_layout*>(&ro->frame_layout), &l, sizeof(l));

    ro->viewer_pidns = viewer_pid_namespace();
    ro->track_off_cpu = options.track_off_cpu;
    ro->follow_children = options.follow_children;
    // sched_switch through tp_btf where the kernel's BTF describes the tracepoint, else raw_tp; the
    // selector calls through fentry/fexit on the functions that implement them, else through the
    // syscall tracepoints (which every syscall on the machine pays for).
    const std::vector<KernelFeature> features =
        options.kernel_features.empty() ? probe_kernel_features() : options.kernel_features;
    LOOPSPY_CHECK(check_required_features(features));
    impl->use_tp_btf = feature_available(features, "tp_btf");
    impl->use_fentry = options.track_off_cpu && feature_available(features, "fentry");
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, impl->skel->obj) {
        if (prog != impl->skel->progs.on_cpu_sample) bpf_program__set_autoload(prog, false);
    }
    if (options.track_off_cpu) {
        for (bpf_program* prog : impl->scheduler_hooks()) bpf_program__set_autoload(prog, true);
    }
    for (bpf_program* prog : impl->process_hooks()) bpf_program__set_autoload(prog, true);

    if (int err = loopspy_bpf__load(impl->skel.get()); err) return bpf_error("loading the BPF programs", err);

    impl->ring.reset(ring_buffer__new(bpf_map__fd(impl->skel->maps.events), &Impl::on_event, impl.get(), nullptr));
    if (!impl->ring) return bpf_error("creating the ring buffer", errno);
    return std::unique_ptr<Sampler>(new Sampler(std::move(impl)));
}

Result<void> Sampler::start(std::span<const Tid> threads) {
    LOOPSPY_CHECK(impl_->attach_all(impl_->process_hooks(), "attaching the fork and exec hooks"));
    if (impl_->options.track_off_cpu) {
        LOOPSPY_CHECK(impl_->attach_all(impl_->scheduler_hooks(), "attaching the scheduler and selector hooks"));
    }
    if (impl_->options.mode == SamplingMode::PerCpu) {
        for (int cpu : online_cpus()) LOOPSPY_CHECK(impl_->attach_event(-1, cpu));
    } else {
        // Every thread there now, Python or not yet: the ones started later inherit theirs.
        LOOPSPY_CHECK(room_for_events(threads.size()));
        for (Tid tid : threads) LOOPSPY_CHECK(impl_->attach_event(tid.value, -1));
    }
    return {};
}

Result<void> Sampler::publish_thread_state(Tid tid, RemoteAddr tstate) {
    __u32 key = static_cast<__u32>(tid.value);
    __u64 value = tstate.value;
    if (bpf_map__update_elem(impl_->skel->maps.thread_states, &key, sizeof(key), &value, sizeof(value), BPF_ANY)) {
        return bpf_error("publishing a thread state", errno);
    }
    return {};
}

Result<void> Sampler::publish_task_finder(Pid pid, const loopspy_task_finder& finder) {
    __u32 key = static_cast<__u32>(pid.value);
    if (bpf_map__update_elem(impl_->skel->maps.task_finders, &key, sizeof(key), &finder, sizeof(finder), BPF_ANY)) {
        return bpf_error("publishing how to find a process's running task", errno);
    }
    return {};
}

Result<void> Sampler::publish_gils(Pid pid, std::span<const RemoteAddr> gils, std::uint64_t size,
                                   std::uint64_t last_holder) {
    __u32 key = static_cast<__u32>(pid.value);
    loopspy_gils value{};
    value.size = static_cast<__u32>(size);
    value.last_holder = static_cast<__u32>(last_holder);
    for (RemoteAddr g : gils) {
        if (value.count == LOOPSPY_MAX_GILS) break;
        value.start[value.count++] = g.value;
    }
    if (bpf_map__update_elem(impl_->skel->maps.gils, &key, sizeof(key), &value, sizeof(value), BPF_ANY)) {
        return bpf_error("publishing a process's GILs", errno);
    }
    return {};
}

void Sampler::forget_thread_state(Tid tid) {
    __u32 key = static_cast<__u32>(tid.value);
    bpf_map__delete_elem(impl_->skel->maps.thread_states, &key, sizeof(key), 0);
}

Result<void> Sampler::follow_process(Pid pid) {
    __u32 key = static_cast<__u32>(pid.value), value = LOOPSPY_TARGET_SAMPLED;
    if (bpf_map__update_elem(impl_->skel->maps.targets, &key, sizeof(key), &value, sizeof(value), BPF_ANY)) {
        return bpf_error("following a child process", errno);
    }
    return {};
}

void Sampler::stop_sampling(Pid pid) {
    __u32 key = static_cast<__u32>(pid.value), value = LOOPSPY_TARGET_FOLLOWED;
    // Only a process the kernel still follows (update, not insert: one that ended stays gone).
    bpf_map__update_elem(impl_->skel->maps.targets, &key, sizeof(key), &value, sizeof(value), BPF_EXIST);
}

void Sampler::forget_process(Pid pid) {
    __u32 key = static_cast<__u32>(pid.value);
    bpf_map__delete_elem(impl_->skel->maps.targets, &key, sizeof(key), 0);
    bpf_map__delete_elem(impl_->skel->maps.gils, &key, sizeof(key), 0);
    bpf_map__delete_elem(impl_->skel->maps.task_finders, &key, sizeof(key), 0);
}

Result<int> Sampler::poll(int timeout_ms, const Handlers& handlers) {
    impl_->handlers = &handlers;
    // The kernel rarely wakes us (see wakeup_bytes in loopspy.bpf.c): wait out the timeout, then
    // drain whatever arrived.
    int n = ring_buffer__poll(impl_->ring.get(), timeout_ms);
    if (n >= 0 || n == -EINTR) {
        int more = ring_buffer__consume(impl_->ring.get());
        n = (n > 0 ? n : 0) + (more > 0 ? more : 0);
    }
    impl_->handlers = nullptr;
    if (n < 0) return bpf_error("reading samples", n);
    return n;
}

void Sampler::mark_shape_known(std::uint64_t shape) {
    __u64 key = shape;
    __u8 one = 1;
    // Best effort: a failed update only means more early wake-ups for this shape.
    bpf_map__update_elem(impl_->skel->maps.known_shapes, &key, sizeof(key), &one, sizeof(one), BPF_ANY);
}

std::uint64_t stack_shape(std::span<const loopspy_frame> frames) {
    __u64 shape = LOOPSPY_SHAPE_SEED;
    for (const loopspy_frame& f : frames) shape = loopspy_shape_step(shape, f.code);
    return shape;
}

namespace {

std::uint64_t read_counter(bpf_map* map, __u32 key, std::vector<__u64>& values) {
    if (bpf_map__lookup_elem(map, &key, sizeof(key), values.data(), values.size() * sizeof(__u64), 0)) return 0;
    std::uint64_t sum = 0;
    for (__u64 v : values) sum += v;
    return sum;
}

std::vector<__u64> per_cpu_values() {
    int ncpus = libbpf_num_possible_cpus();
    return std::vector<__u64>(static_cast<std::size_t>(ncpus > 0 ? ncpus : 1));
}

}  // namespace

SamplerStats Sampler::stats() const {
    SamplerStats s;
    std::vector<__u64> values = per_cpu_values();
    for (__u32 key = 0; key < LOOPSPY_STAT__COUNT; ++key) s.counts[key] = read_counter(impl_->skel->maps.stats, key, values);
    return s;
}

std::uint64_t Sampler::unknown_thread_samples() const {
    std::vector<__u64> values = per_cpu_values();
    return read_counter(impl_->skel->maps.stats, LOOPSPY_STAT_NO_TSTATE, values);
}

namespace {

/// Takes (reads and deletes) every per-tid count of an unknown_tids-like map.
std::vector<std::pair<__u32, __u64>> take_counts(bpf_map* map) {
    std::vector<std::pair<__u32, __u64>> out;
    __u32 key = 0, next = 0;
    std::vector<__u32> keys;
    const void* prev = nullptr;
    while (bpf_map__get_next_key(map, prev, &next, sizeof(next)) == 0) {
        keys.push_back(next);
        key = next;
        prev = &key;
        if (keys.size() > 65536) break;
    }
    for (__u32 k : keys) {
        __u64 v = 0;
        if (bpf_map__lookup_and_delete_elem(map, &k, sizeof(k), &v, sizeof(v), 0) == 0 ||
            bpf_map__lookup_elem(map, &k, sizeof(k), &v, sizeof(v), 0) == 0) {
            bpf_map__delete_elem(map, &k, sizeof(k), 0);
            out.emplace_back(k, v);
        }
    }
    return out;
}

}  // namespace

std::vector<UnknownThread> Sampler::take_unknown_threads() {
    std::map<__u32, UnknownThread> by_tid;
    for (const auto& [tid, n] : take_counts(impl_->skel->maps.unknown_tids)) {
        by_tid.try_emplace(tid, UnknownThread{Tid{static_cast<std::int32_t>(tid)}}).first->second.samples += n;
    }
    for (const auto& [tid, n] : take_counts(impl_->skel->maps.unknown_off_tids)) {
        by_tid.try_emplace(tid, UnknownThread{Tid{static_cast<std::int32_t>(tid)}}).first->second.off_cpu += n;
    }
    std::vector<UnknownThread> out;
    out.reserve(by_tid.size());
    for (const auto& [tid, t] : by_tid) out.push_back(t);
    return out;
}

}  // namespace loopspy
