// SPDX-License-Identifier: GPL-2.0
/* loopspy's kernel side: sample a target's threads and walk their CPython frame chain in place.
 *
 * User space resolves each thread's PyThreadState and publishes tid -> tstate in `thread_states`;
 * the layout of the interpreter's structs arrives through the const volatile options below, so one
 * object serves every supported CPython version. Only pointers and offsets are read here: no
 * strings; naming frames is the symbolizer's job. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "loopspy.h"

char LICENSE[] SEC("license") = "GPL";

/* ---- options, set by the loader before load ---- */
const volatile __u32 target_tgid = 0;
/* The interpreter's struct layout (struct loopspy_frame_layout in loopspy.h). */
const volatile struct loopspy_frame_layout frame_layout = {
    .tstate_current_frame = LOOPSPY_NO_OFFSET,
    .tstate_cframe = LOOPSPY_NO_OFFSET,
    .cframe_current_frame = LOOPSPY_NO_OFFSET,
    .frame_read_size = LOOPSPY_FRAME_READ_MAX,
    .owner_cstack = LOOPSPY_NO_OWNER,
    .owner_generator = LOOPSPY_NO_OWNER,
};

/* Off-CPU intervals and selector waits (the loop view) are tracked unless switched off. */
const volatile bool track_off_cpu = true;
/* Selector waits shorter than this, after busy periods shorter than this, are folded. */
const volatile __u64 fold_ns = 1000000;

/* ---- maps ---- */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u32);   /* tid */
    __type(value, __u64); /* PyThreadState address */
} thread_states SEC(".maps");

/* Samples of target threads not (yet) in thread_states, per tid: user space decides later whether
 * they were lost Python samples (a thread it had not seen yet) or native threads. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, __u64);
} unknown_tids SEC(".maps");

/* What each target thread is doing, as the syscall and scheduler hooks see it. */
struct thread_activity {
    __s32 syscall;          /* in progress, or LOOPSPY_NO_SYSCALL */
    __u32 off_pending;      /* an off-CPU interval started and its stack is in offcpu_stacks */
    __u64 off_since_ns;
    __s32 off_syscall;
    __u32 off_flags;
    __u64 selector_enter_ns;
    __u64 last_selector_leave_ns;
    __u64 folded_wait_ns;
    __u64 folded_busy_ns;
    __u32 folded_waits;
    __u32 uses_epoll; /* the thread has waited in epoll: poll/select are then ordinary blocking calls */
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u32);
    __type(value, struct thread_activity);
} activity SEC(".maps");

/* The Python stack of each thread that is off-CPU now, walked when it left. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u32);
    __type(value, struct loopspy_sample);
} offcpu_stacks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct loopspy_sample);
} sample_scratch SEC(".maps");

struct frame_buf {
    __u8 bytes[LOOPSPY_FRAME_READ_MAX + 8];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct frame_buf);
} frame_scratch SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, LOOPSPY_STAT__COUNT);
    __type(key, __u32);
    __type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 stat)
{
    __u64 *v = bpf_map_lookup_elem(&stats, &stat);
    if (v)
        *v += 1;
}

static __always_inline __u64 field_u64(const struct frame_buf *buf, __u32 off)
{
    return *(const __u64 *)&buf->bytes[off & (LOOPSPY_FRAME_READ_MAX - 1)];
}

static __always_inline __u8 field_u8(const struct frame_buf *buf, __u32 off)
{
    return buf->bytes[off & (LOOPSPY_FRAME_READ_MAX - 1)];
}

/* The frame the thread executes now, or 0 with *err set when the chain head cannot be read. */
static __always_inline __u64 current_frame(__u64 tstate, int *err)
{
    __u64 frame = 0, cframe = 0;

    if (frame_layout.tstate_current_frame != LOOPSPY_NO_OFFSET) {
        if (bpf_probe_read_user(&frame, sizeof(frame), (void *)(tstate + frame_layout.tstate_current_frame)))
            *err = 1;
        return frame;
    }
    if (bpf_probe_read_user(&cframe, sizeof(cframe), (void *)(tstate + frame_layout.tstate_cframe))) {
        *err = 1;
        return 0;
    }
    if (!cframe) /* a thread state that runs no Python code (yet, or any more) */
        return 0;
    if (bpf_probe_read_user(&frame, sizeof(frame), (void *)(cframe + frame_layout.cframe_current_frame)))
        *err = 1;
    return frame;
}

struct walk_ctx {
    struct loopspy_sample *ev;
    struct frame_buf *buf;
    __u64 frame; /* the next frame to read, 0 at the end of the chain */
    __u32 n;     /* frames stored so far */
    __u64 shape; /* loopspy_shape_step over the stored frames' code objects */
};

/* One step of the frame walk: read the frame, keep it unless CPython hides it, move outward. */
static long walk_one_frame(__u32 index, void *data)
{
    struct walk_ctx *w = data;
    if (!w->frame)
        return 1;
    __u32 read_size = frame_layout.frame_read_size;
    if (read_size > LOOPSPY_FRAME_READ_MAX)
        read_size = LOOPSPY_FRAME_READ_MAX;
    if (bpf_probe_read_user(w->buf->bytes, read_size, (void *)w->frame)) {
        w->ev->h.flags |= LOOPSPY_SAMPLE_READ_ERROR;
        return 1;
    }
    __u8 owner = field_u8(w->buf, frame_layout.frame_owner);
    if (owner != frame_layout.owner_cstack) {
        __u64 code = field_u64(w->buf, frame_layout.frame_code) & ~frame_layout.code_tag_mask;
        __u64 instr = field_u64(w->buf, frame_layout.frame_instr);
        struct loopspy_frame *f = &w->ev->frames[w->n & (LOOPSPY_MAX_FRAMES - 1)];
        f->code = code;
        f->offset = (__s32)(instr - (code + frame_layout.code_adaptive));
        f->owner = owner;
        w->n++;
        w->shape = loopspy_shape_step(w->shape, code);
        if (owner == frame_layout.owner_generator)
            w->ev->h.coro_frame = w->frame;
    }
    w->frame = field_u64(w->buf, frame_layout.frame_previous);
    return 0;
}

/* Walk the Python stack of the current thread (whose state is `tstate`) into `ev`, and its shape
 * (which code objects, in which order) into *shape. Returns 0, or -1 when the chain's head could
 * not be read. */
static __always_inline int walk_stack(struct loopspy_sample *ev, __u64 tstate, __u64 *shape)
{
    __u32 zero = 0;
    struct frame_buf *buf = bpf_map_lookup_elem(&frame_scratch, &zero);
    if (!buf)
        return -1;
    int err = 0;
    __u64 frame = current_frame(tstate, &err);
    if (err)
        return -1;
    ev->h.flags = 0;
    ev->h.coro_frame = 0;
    struct walk_ctx walk = {
        .ev = ev,
        .buf = buf,
        .frame = frame,
        .n = 0,
        .shape = LOOPSPY_SHAPE_SEED,
    };
    /* bpf_loop has the verifier check one step, not LOOPSPY_MAX_FRAMES unrolled copies. */
    bpf_loop(LOOPSPY_MAX_FRAMES, walk_one_frame, &walk, 0);
    __u32 n = walk.n;
    if (walk.frame && !(ev->h.flags & LOOPSPY_SAMPLE_READ_ERROR))
        ev->h.flags |= LOOPSPY_SAMPLE_TRUNCATED;
    if (n > LOOPSPY_MAX_FRAMES)
        n = LOOPSPY_MAX_FRAMES;
    ev->h.nframes = n;
    *shape = walk.shape;
    return 0;
}

/* User space drains the ring buffer on its own timer; the kernel wakes it early only when the
 * buffer fills past this. Waking it for every event would, on a busy machine, preempt the very
 * thread being profiled for each event it causes. */
const volatile __u64 wakeup_bytes = 2 * 1024 * 1024;

/* Stack shapes (the code objects of a stack, in order, line numbers aside) user space has named.
 * A sample of a shape not here wakes user space at once, so that it names new code while that
 * still exists: a module body run once at import, the shut-down code of a program about to exit.
 * A program has few shapes once warm, so every other event collects until user space's timer. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, LOOPSPY_KNOWN_SHAPES);
    __type(key, __u64);
    __type(value, __u8);
} known_shapes SEC(".maps");

static __always_inline __u64 wakeup_flag(bool early)
{
    /* Forced: the default (wake only a consumer that has caught up) stays silent while
     * records that did not wake it are still unread. */
    if (early)
        return BPF_RB_FORCE_WAKEUP;
    return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline long emit_sample(struct loopspy_sample *ev, bool early)
{
    __u32 n = ev->h.nframes;
    if (n > LOOPSPY_MAX_FRAMES)
        n = LOOPSPY_MAX_FRAMES;
    __u64 size = sizeof(ev->h) + (__u64)n * sizeof(struct loopspy_frame);
    if (size > sizeof(*ev))
        size = sizeof(*ev);
    return bpf_ringbuf_output(&events, ev, size, wakeup_flag(early));
}

/* The thread state of a target thread, counting a sample of a thread not (yet) known. */
static __always_inline __u64 *thread_state_of(__u32 tid)
{
    __u64 *tstate = bpf_map_lookup_elem(&thread_states, &tid);
    if (!tstate) {
        __u64 one = 1, *n = bpf_map_lookup_elem(&unknown_tids, &tid);
        if (n)
            __sync_fetch_and_add(n, 1);
        else
            bpf_map_update_elem(&unknown_tids, &tid, &one, BPF_NOEXIST);
    }
    return tstate;
}

/* On-CPU: walk the current thread's stack into the per-CPU scratch sample and emit it. */
static __always_inline int sample_on_cpu(__u32 tid)
{
    __u32 zero = 0;
    __u64 *tstate = thread_state_of(tid);
    if (!tstate) {
        count(LOOPSPY_STAT_NO_TSTATE);
        return 0;
    }
    struct loopspy_sample *ev = bpf_map_lookup_elem(&sample_scratch, &zero);
    if (!ev)
        return 0;
    __u64 shape = 0;
    if (walk_stack(ev, *tstate, &shape)) {
        count(LOOPSPY_STAT_LOST_READ);
        return 0;
    }
    ev->h.kind = LOOPSPY_EVENT_ON_CPU;
    ev->h.tid = tid;
    ev->h.ts_ns = bpf_ktime_get_ns();
    ev->h.duration_ns = 0;
    ev->h.syscall = LOOPSPY_NO_SYSCALL;
    ev->h.off_flags = 0;

    count(LOOPSPY_STAT_SAMPLES);
    if (ev->h.flags & LOOPSPY_SAMPLE_READ_ERROR)
        count(LOOPSPY_STAT_PARTIAL);
    if (ev->h.flags & LOOPSPY_SAMPLE_TRUNCATED)
        count(LOOPSPY_STAT_TRUNCATED);
    /* Only on-CPU samples wake early: they are where new code shows up. Waking for an off-CPU
     * event would feed back (the woken recorder preempts the target, which is another event). */
    bool new_shape = ev->h.nframes > 0 && !bpf_map_lookup_elem(&known_shapes, &shape);
    if (emit_sample(ev, new_shape)) {
        count(LOOPSPY_STAT_LOST_RINGBUF);
        return 0;
    }
    count(LOOPSPY_STAT_EMITTED);
    return 0;
}

static __always_inline bool is_epoll_wait(__s32 nr)
{
    /* x86-64: epoll_wait, epoll_pwait, epoll_pwait2 */
    return nr == 232 || nr == 281 || nr == 441;
}

static __always_inline bool is_poll_or_select(__s32 nr)
{
    /* x86-64: poll, select, pselect6, ppoll */
    return nr == 7 || nr == 23 || nr == 270 || nr == 271;
}

/* Is `nr` this thread's selector wait? epoll always is. poll/select are the selector of a loop
 * built on PollSelector/SelectSelector, but in a thread that waits in epoll they are blocking
 * calls of its own (a socket read with a timeout polls), so there they are not. */
static __always_inline bool is_selector(const struct thread_activity *a, __s32 nr)
{
    return is_epoll_wait(nr) || (!a->uses_epoll && is_poll_or_select(nr));
}

static __always_inline struct thread_activity *activity_of(__u32 tid)
{
    struct thread_activity *a = bpf_map_lookup_elem(&activity, &tid);
    if (a)
        return a;
    struct thread_activity fresh = { .syscall = LOOPSPY_NO_SYSCALL };
    bpf_map_update_elem(&activity, &tid, &fresh, BPF_NOEXIST);
    return bpf_map_lookup_elem(&activity, &tid);
}

/* A target thread leaves the CPU: remember when, why, and (unless it waits in its selector,
 * which is idle time the selector events already measure) its Python stack. */
static __always_inline void thread_switched_out(__u32 tid, bool preempted)
{
    struct thread_activity *a = activity_of(tid);
    if (!a)
        return;
    a->off_pending = 0;
    if (is_selector(a, a->syscall))
        return;
    __u64 *tstate = bpf_map_lookup_elem(&thread_states, &tid);
    if (!tstate)
        return;
    struct loopspy_sample *ev = bpf_map_lookup_elem(&offcpu_stacks, &tid);
    if (!ev) {
        __u32 zero = 0;
        struct loopspy_sample *tmpl = bpf_map_lookup_elem(&sample_scratch, &zero);
        if (!tmpl)
            return;
        bpf_map_update_elem(&offcpu_stacks, &tid, tmpl, BPF_NOEXIST);
        ev = bpf_map_lookup_elem(&offcpu_stacks, &tid);
        if (!ev) {
            count(LOOPSPY_STAT_LOST_OFF_CPU);
            return;
        }
    }
    __u64 shape = 0;
    if (walk_stack(ev, *tstate, &shape)) {
        count(LOOPSPY_STAT_LOST_OFF_CPU);
        return;
    }
    a->off_since_ns = bpf_ktime_get_ns();
    a->off_syscall = a->syscall;
    a->off_flags = preempted ? LOOPSPY_OFF_PREEMPTED : 0;
    a->off_pending = 1;
}

/* A target thread is back on a CPU: emit the interval it spent off, with its exact duration. */
static __always_inline void thread_switched_in(__u32 tid)
{
    struct thread_activity *a = bpf_map_lookup_elem(&activity, &tid);
    if (!a || !a->off_pending)
        return;
    a->off_pending = 0;
    struct loopspy_sample *ev = bpf_map_lookup_elem(&offcpu_stacks, &tid);
    if (!ev)
        return;
    __u64 now = bpf_ktime_get_ns();
    ev->h.kind = LOOPSPY_EVENT_OFF_CPU;
    ev->h.tid = tid;
    ev->h.ts_ns = a->off_since_ns;
    ev->h.duration_ns = now - a->off_since_ns;
    ev->h.syscall = a->off_syscall;
    ev->h.off_flags = a->off_flags;
    if (emit_sample(ev, false))
        count(LOOPSPY_STAT_LOST_OFF_CPU);
    else
        count(LOOPSPY_STAT_OFF_CPU);
}

static __always_inline int on_switch(bool preempt, struct task_struct *prev, struct task_struct *next,
                                     unsigned int prev_state)
{
    if (!track_off_cpu)
        return 0;
    if ((__u32)BPF_CORE_READ(prev, tgid) == target_tgid)
        thread_switched_out((__u32)BPF_CORE_READ(prev, pid), preempt || prev_state == 0);
    if ((__u32)BPF_CORE_READ(next, tgid) == target_tgid)
        thread_switched_in((__u32)BPF_CORE_READ(next, pid));
    return 0;
}

static __always_inline void selector_returned(__u32 tid, struct thread_activity *a)
{
    __u64 now = bpf_ktime_get_ns();
    __u64 wait = now - a->selector_enter_ns;
    __u64 last = a->last_selector_leave_ns;
    __u64 busy = last ? a->selector_enter_ns - last : 0;
    if (last && wait < fold_ns && busy < fold_ns) {
        a->folded_waits++;
        a->folded_wait_ns += wait;
        a->folded_busy_ns += busy;
        a->last_selector_leave_ns = now;
        return;
    }
    struct loopspy_selector_event ev = {
        .kind = LOOPSPY_EVENT_SELECTOR,
        .tid = tid,
        .syscall = a->syscall,
        .folded_waits = a->folded_waits,
        .previous_leave_ns = last,
        .enter_ns = a->selector_enter_ns,
        .leave_ns = now,
        .folded_wait_ns = a->folded_wait_ns,
        .folded_busy_ns = a->folded_busy_ns,
    };
    if (bpf_ringbuf_output(&events, &ev, sizeof(ev), wakeup_flag(false))) {
        /* Fold it in, so totals stay exact and the next reported wait bounds the busy period. */
        count(LOOPSPY_STAT_LOST_SELECTOR);
        a->folded_waits++;
        a->folded_wait_ns += wait;
        a->folded_busy_ns += busy;
        a->last_selector_leave_ns = now;
        return;
    }
    count(LOOPSPY_STAT_SELECTOR);
    a->folded_waits = 0;
    a->folded_wait_ns = 0;
    a->folded_busy_ns = 0;
    a->last_selector_leave_ns = now;
}

SEC("perf_event")
int on_cpu_sample(struct bpf_perf_event_data *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    if ((__u32)(id >> 32) != target_tgid)
        return 0;
    return sample_on_cpu((__u32)id);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
{
    return on_switch(preempt, prev, next, prev_state);
}

/* The same for kernels without tp_btf; the loader picks one. */
SEC("raw_tp/sched_switch")
int BPF_PROG(on_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
{
    return on_switch(preempt, prev, next, prev_state);
}

SEC("raw_tp/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!track_off_cpu || (__u32)(pid_tgid >> 32) != target_tgid)
        return 0;
    struct thread_activity *a = activity_of((__u32)pid_tgid);
    if (!a)
        return 0;
    a->syscall = (__s32)id;
    if (is_epoll_wait((__s32)id))
        a->uses_epoll = 1;
    if (is_selector(a, (__s32)id))
        a->selector_enter_ns = bpf_ktime_get_ns();
    return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!track_off_cpu || (__u32)(pid_tgid >> 32) != target_tgid)
        return 0;
    struct thread_activity *a = bpf_map_lookup_elem(&activity, &(__u32){(__u32)pid_tgid});
    if (!a)
        return 0;
    if (is_selector(a, a->syscall))
        selector_returned((__u32)pid_tgid, a);
    a->syscall = LOOPSPY_NO_SYSCALL;
    return 0;
}
