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
    .tstate_frame = LOOPSPY_NO_OFFSET,
    .frame_lasti = LOOPSPY_NO_OFFSET,
    .frame_read_size = LOOPSPY_FRAME_READ_MAX,
    .owner_cstack = LOOPSPY_NO_OWNER,
    .owner_generator = LOOPSPY_NO_OWNER,
};

/* --subprocesses: every descendant of a target is a target too, from its fork on. */
const volatile bool follow_children = false;

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

/* tgid -> the GILs of that process, published by user space with its thread states. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, struct loopspy_gils);
} gils SEC(".maps");

/* The target processes besides target_tgid (with follow_children): tgid -> enum
 * loopspy_target. The kernel adds a child at its fork, so no sample of it is missed; user space
 * stops sampling one that is not Python (its children are still followed: a shell that starts
 * Python), and removes those that ended. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, __u32);
} targets SEC(".maps");

/* Whether the process is sampled and tracked. */
static __always_inline bool is_target(__u32 tgid)
{
    if (tgid == target_tgid)
        return true;
    if (!follow_children)
        return false;
    __u32 *t = bpf_map_lookup_elem(&targets, &tgid);
    return t && *t == LOOPSPY_TARGET_SAMPLED;
}

/* Whether the process's new children are followed. */
static __always_inline bool is_followed(__u32 tgid)
{
    return tgid == target_tgid || (follow_children && bpf_map_lookup_elem(&targets, &tgid));
}

/* Samples of target threads not (yet) in thread_states, per tid; and their off-CPU intervals,
 * apart (every switch-out of a thread churning through would otherwise push the samples' counts
 * out of the LRU). User space decides later whether they were a Python thread's or a native one's. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, __u64);
} unknown_tids SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, __u64);
} unknown_off_tids SEC(".maps");

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

#include "task_ids.bpf.h"
#include "frame_walk.bpf.h"
#include "task_capture.bpf.h"

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

/* The thread state of a target thread, counting an on-CPU sample or an off-CPU interval of a
 * thread not (yet) known. */
static __always_inline __u64 *thread_state_of(__u32 tid, bool off_cpu)
{
    __u64 *tstate = bpf_map_lookup_elem(&thread_states, &tid);
    if (tstate)
        return tstate;
    void *counts = off_cpu ? (void *)&unknown_off_tids : (void *)&unknown_tids;
    __u64 one = 1, *n = bpf_map_lookup_elem(counts, &tid);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(counts, &tid, &one, BPF_NOEXIST);
    return 0;
}

/* On-CPU: walk the current thread's stack into the per-CPU scratch sample and emit it. */
static __always_inline int sample_on_cpu(__u32 pid, __u32 tid)
{
    __u32 zero = 0;
    __u64 *tstate = thread_state_of(tid, false);
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
    capture_task(ev, pid, *tstate);
    ev->h.kind = LOOPSPY_EVENT_ON_CPU;
    ev->h.tid = tid;
    ev->h.pid = pid;
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

#include "offcpu.bpf.h"

SEC("perf_event")
int on_cpu_sample(struct bpf_perf_event_data *ctx)
{
    __u64 id = current_ids();
    if (!is_target((__u32)(id >> 32)))
        return 0;
    return sample_on_cpu((__u32)(id >> 32), (__u32)id);
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

/* A process event for user space, which attaches to a new child or re-reads an exec'd program at
 * once (so it wakes the recorder). */
static __always_inline void emit_process_event(__u32 change, __u32 pid, __u32 parent)
{
    struct loopspy_process_event ev = {
        .kind = LOOPSPY_EVENT_PROCESS,
        .change = change,
        .pid = pid,
        .parent = parent,
        .ts_ns = bpf_ktime_get_ns(),
    };
    if (bpf_ringbuf_output(&events, &ev, sizeof(ev), BPF_RB_FORCE_WAKEUP))
        count(LOOPSPY_STAT_LOST_PROCESS);
}

static __always_inline int process_forked(struct task_struct *parent, struct task_struct *child)
{
    __u64 c = task_ids(child);
    if ((__u32)c != (__u32)(c >> 32)) /* a new thread, not a new process */
        return 0;
    __u32 parent_tgid = (__u32)(task_ids(parent) >> 32);
    if (!is_followed(parent_tgid))
        return 0;
    __u32 pid = (__u32)c, sampled = LOOPSPY_TARGET_SAMPLED;
    if (bpf_map_update_elem(&targets, &pid, &sampled, BPF_ANY)) {
        count(LOOPSPY_STAT_LOST_PROCESS);
        return 0;
    }
    /* The child's one thread is a copy of the forking thread (this one), its thread state at the
     * same address in the copied memory: known from the first instant, before user space has
     * even heard of the child, so its first samples and off-CPU intervals are not lost. */
    __u32 forking = (__u32)current_ids();
    __u64 *tstate = bpf_map_lookup_elem(&thread_states, &forking);
    if (tstate)
        bpf_map_update_elem(&thread_states, &pid, tstate, BPF_ANY);
    struct loopspy_gils *g = bpf_map_lookup_elem(&gils, &parent_tgid);
    if (g)
        bpf_map_update_elem(&gils, &pid, g, BPF_ANY);
    struct loopspy_task_finder *finder = bpf_map_lookup_elem(&task_finders, &parent_tgid);
    if (finder)
        bpf_map_update_elem(&task_finders, &pid, finder, BPF_ANY);
    emit_process_event(LOOPSPY_PROCESS_FORKED, pid, parent_tgid);
    return 0;
}

static __always_inline int process_execed(void)
{
    __u32 tgid = (__u32)(current_ids() >> 32);
    if (!is_followed(tgid))
        return 0;
    /* The thread that exec'd is the only one left, now with the process's id, and its thread
     * state belonged to the old program: forget it before a sample reads the new memory there.
     * Until user space has read the new program, it is not sampled as Python. */
    bpf_map_delete_elem(&thread_states, &tgid);
    bpf_map_delete_elem(&gils, &tgid);
    bpf_map_delete_elem(&task_finders, &tgid);
    emit_process_event(LOOPSPY_PROCESS_EXECED, tgid, 0);
    return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork_btf, struct task_struct *parent, struct task_struct *child)
{
    return process_forked(parent, child);
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(on_fork_raw, struct task_struct *parent, struct task_struct *child)
{
    return process_forked(parent, child);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec_btf)
{
    return process_execed();
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(on_exec_raw)
{
    return process_execed();
}

/* The selector calls, hooked where the kernel implements them: only a thread that calls one pays
 * for the hook, and every other syscall on the machine runs as if loopspy were not there. */
SEC("fentry/do_epoll_wait")
int BPF_PROG(epoll_entered)
{
    return selector_entered(true);
}

SEC("fexit/do_epoll_wait")
int BPF_PROG(epoll_left)
{
    return selector_left();
}

SEC("fentry/do_sys_poll")
int BPF_PROG(poll_entered)
{
    return selector_entered(false);
}

SEC("fexit/do_sys_poll")
int BPF_PROG(poll_left)
{
    return selector_left();
}

SEC("fentry/core_sys_select")
int BPF_PROG(select_entered)
{
    return selector_entered(false);
}

SEC("fexit/core_sys_select")
int BPF_PROG(select_left)
{
    return selector_left();
}

/* The same from the syscall tracepoints, for kernels without fentry: every syscall on the
 * machine runs these (and pays for them), so the loader picks them only as a fallback. */
SEC("raw_tp/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id)
{
    if (is_epoll_wait(id))
        return selector_entered(true);
    if (is_poll_or_select(id))
        return selector_entered(false);
    return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
    return selector_left();
}
