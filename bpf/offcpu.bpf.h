/* SPDX-License-Identifier: GPL-2.0 */
/* Off-CPU intervals with their exact durations, and the loop's selector waits: what each target
 * thread is doing as the scheduler and syscall hooks see it. Included by loopspy.bpf.c after the
 * frame walk and the sample emitters. */
#ifndef LOOPSPY_OFFCPU_BPF_H
#define LOOPSPY_OFFCPU_BPF_H

/* What each target thread is doing, as the scheduler and selector hooks see it. */
struct thread_activity {
    __u32 in_selector;      /* between a selector call's entry and its return */
    __u32 off_pending;      /* an off-CPU interval started and its stack is in offcpu_stacks */
    __u64 off_since_ns;
    __s32 off_syscall;
    __u32 off_flags;
    __u64 off_gil_holder;   /* waiting for the GIL: the thread state that held it */
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

/* The syscall the current thread is in, from the registers it entered the kernel with: orig_ax
 * holds the syscall number during a syscall, and -1 after an interrupt or exception (the entry
 * code sets it so), so no per-syscall hook is needed to know it. */
static __always_inline __s32 current_syscall(void)
{
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
    long nr = BPF_CORE_READ(regs, orig_ax);
    return nr >= 0 ? (__s32)nr : LOOPSPY_NO_SYSCALL;
}

/* x86-64: epoll_wait, epoll_pwait, epoll_pwait2 */
static __always_inline bool is_epoll_wait(long nr)
{
    return nr == 232 || nr == 281 || nr == 441;
}

/* x86-64: poll, select, pselect6, ppoll */
static __always_inline bool is_poll_or_select(long nr)
{
    return nr == 7 || nr == 23 || nr == 270 || nr == 271;
}

static __always_inline bool is_selector_syscall(long nr)
{
    return is_epoll_wait(nr) || is_poll_or_select(nr);
}

static __always_inline struct thread_activity *activity_of(__u32 tid)
{
    struct thread_activity *a = bpf_map_lookup_elem(&activity, &tid);
    if (a)
        return a;
    struct thread_activity fresh = {};
    bpf_map_update_elem(&activity, &tid, &fresh, BPF_NOEXIST);
    return bpf_map_lookup_elem(&activity, &tid);
}

/* x86-64: futex */
#define LOOPSPY_SYS_FUTEX 202

/* Why a thread leaves the CPU (enum loopspy_off_flags): preempted, or asleep in futex(2) on its
 * process's GIL, which is when the futex word (the syscall's first argument, in the registers it
 * entered the kernel with) is inside one; then *holder is the thread state holding that GIL (0
 * if it cannot be read). */
static __always_inline __u32 off_cpu_flags(__u32 tgid, __s32 syscall, bool preempted, __u64 *holder)
{
    if (preempted)
        return LOOPSPY_OFF_PREEMPTED;
    if (syscall != LOOPSPY_SYS_FUTEX)
        return 0;
    struct loopspy_gils *g = bpf_map_lookup_elem(&gils, &tgid);
    if (!g)
        return 0;
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
    __u64 word = BPF_CORE_READ(regs, di);
    __u64 gil = 0;
    for (int i = 0; i < LOOPSPY_MAX_GILS; i++) {
        if (i < g->count && word >= g->start[i] && word - g->start[i] < g->size)
            gil = g->start[i];
    }
    if (!gil)
        return 0;
    if (bpf_probe_read_user(holder, sizeof(*holder), (void *)(gil + g->last_holder)))
        *holder = 0;
    return LOOPSPY_OFF_GIL;
}

/* A target thread leaves the CPU: remember when, why, and (unless it waits in its selector,
 * which is idle time the selector events already measure) its Python stack. */
static __always_inline void thread_switched_out(__u32 tgid, __u32 tid, bool preempted)
{
    struct thread_activity *a = activity_of(tid);
    if (!a)
        return;
    a->off_pending = 0;
    __s32 syscall = current_syscall();
    if (a->in_selector) {
        if (is_selector_syscall(syscall))
            return;
        /* Marked in its selector, but it is in another syscall (or none): the selector's return
         * was never seen (its fexit attached after the call had begun). It is not idle. */
        a->in_selector = 0;
        count(LOOPSPY_STAT_STALE_SELECTOR);
    }
    __u64 *tstate = thread_state_of(tid, true);
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
    capture_task(ev, tgid, *tstate);
    a->off_since_ns = bpf_ktime_get_ns();
    a->off_syscall = syscall;
    a->off_gil_holder = 0;
    a->off_flags = off_cpu_flags(tgid, syscall, preempted, &a->off_gil_holder);
    a->off_pending = 1;
}

/* A target thread is back on a CPU: emit the interval it spent off, with its exact duration. */
static __always_inline void thread_switched_in(__u32 pid, __u32 tid)
{
    struct thread_activity *a = bpf_map_lookup_elem(&activity, &tid);
    if (!a || !a->off_pending)
        return;
    a->off_pending = 0;
    struct loopspy_sample *ev = bpf_map_lookup_elem(&offcpu_stacks, &tid);
    if (!ev) {
        count(LOOPSPY_STAT_LOST_OFF_CPU);
        return;
    }
    __u64 now = bpf_ktime_get_ns();
    ev->h.kind = LOOPSPY_EVENT_OFF_CPU;
    ev->h.tid = tid;
    ev->h.pid = pid;
    ev->h.ts_ns = a->off_since_ns;
    ev->h.duration_ns = now - a->off_since_ns;
    ev->h.syscall = a->off_syscall;
    ev->h.off_flags = a->off_flags;
    ev->h.gil_holder = a->off_gil_holder;
    if (emit_sample(ev, false))
        count(LOOPSPY_STAT_LOST_OFF_CPU);
    else
        count(LOOPSPY_STAT_OFF_CPU);
}

/* include/linux/sched.h: the state of a task switched out for the last time, as it exits. */
#define LOOPSPY_TASK_DEAD 0x80

/* A target thread has run for the last time: forget it, so that however many threads a target
 * makes over a recording, the maps hold only those alive. */
static __always_inline void thread_exited(__u32 tid)
{
    bpf_map_delete_elem(&activity, &tid);
    bpf_map_delete_elem(&offcpu_stacks, &tid);
    /* A followed child may end before user space has seen it: its copied thread state goes too. */
    if (follow_children)
        bpf_map_delete_elem(&thread_states, &tid);
}

static __always_inline int on_switch(bool preempt, struct task_struct *prev, struct task_struct *next,
                                     unsigned int prev_state)
{
    if (!track_off_cpu)
        return 0;
    __u64 ids = task_ids(prev);
    if (is_target((__u32)(ids >> 32))) {
        if (prev_state & LOOPSPY_TASK_DEAD)
            thread_exited((__u32)ids);
        else
            thread_switched_out((__u32)(ids >> 32), (__u32)ids, preempt || prev_state == 0);
    }
    ids = task_ids(next);
    if (is_target((__u32)(ids >> 32)))
        thread_switched_in((__u32)(ids >> 32), (__u32)ids);
    return 0;
}

static __always_inline void selector_returned(__u32 tid, struct thread_activity *a, __s32 syscall)
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
        .syscall = syscall,
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

/* A target thread calls into its selector: epoll always is one; poll/select are, in a thread that
 * never waited in epoll (a loop on PollSelector/SelectSelector); in one that did they are ordinary
 * blocking calls (a socket read with a timeout polls), whose off-CPU time is recorded as such. */
static __always_inline int selector_entered(bool epoll)
{
    if (!track_off_cpu)
        return 0;
    __u64 ids = current_ids();
    if (!is_target((__u32)(ids >> 32)))
        return 0;
    struct thread_activity *a = activity_of((__u32)ids);
    if (!a)
        return 0;
    if (epoll)
        a->uses_epoll = 1;
    else if (a->uses_epoll)
        return 0;
    a->in_selector = 1;
    a->selector_enter_ns = bpf_ktime_get_ns();
    return 0;
}

static __always_inline int selector_left(void)
{
    if (!track_off_cpu)
        return 0;
    __u64 ids = current_ids();
    if (!is_target((__u32)(ids >> 32)))
        return 0;
    struct thread_activity *a = bpf_map_lookup_elem(&activity, &(__u32){(__u32)ids});
    if (!a || !a->in_selector)
        return 0;
    a->in_selector = 0;
    selector_returned((__u32)ids, a, current_syscall());
    return 0;
}

#endif /* LOOPSPY_OFFCPU_BPF_H */
