/* SPDX-License-Identifier: GPL-2.0 */
/* Thread and process ids as loopspy's user space sees them. The kernel's own (task->pid,
 * bpf_get_current_pid_tgid) are the initial PID namespace's; when loopspy runs inside a PID
 * namespace (a container), /proc and the pid it was given speak that namespace's ids, so every
 * id the kernel side compares or emits is taken from the task's pid in that namespace. */
#ifndef LOOPSPY_TASK_IDS_BPF_H
#define LOOPSPY_TASK_IDS_BPF_H

/* The inode of the PID namespace user space sees ids in; 0 for the initial namespace, where the
 * kernel's own ids are already the right ones (and nothing below is walked). */
const volatile __u32 viewer_pidns = 0;

/* Namespaces nest at most 32 deep; a container in a container is 2 or 3. */
#define LOOPSPY_MAX_PIDNS_DEPTH 8

/* The number of `pid` in the viewer's namespace, 0 when it has none there. */
static __always_inline __u32 pid_nr_seen(struct pid *pid)
{
    if (!pid)
        return 0;
    unsigned int level = BPF_CORE_READ(pid, level);
    for (unsigned int i = 0; i < LOOPSPY_MAX_PIDNS_DEPTH; i++) {
        if (i > level)
            break;
        struct upid u = {};
        if (bpf_core_read(&u, sizeof(u), &pid->numbers[i]))
            break;
        if (u.ns && BPF_CORE_READ(u.ns, ns.inum) == viewer_pidns)
            return (__u32)u.nr;
    }
    return 0;
}

/* (tgid << 32 | tid) of a task, as user space sees them. */
static __always_inline __u64 task_ids(struct task_struct *task)
{
    if (!viewer_pidns)
        return (__u64)BPF_CORE_READ(task, tgid) << 32 | (__u32)BPF_CORE_READ(task, pid);
    __u32 tid = pid_nr_seen(BPF_CORE_READ(task, thread_pid));
    __u32 tgid = pid_nr_seen(BPF_CORE_READ(task, group_leader, thread_pid));
    return (__u64)tgid << 32 | tid;
}

/* The same for the task running now. */
static __always_inline __u64 current_ids(void)
{
    if (!viewer_pidns)
        return bpf_get_current_pid_tgid();
    return task_ids((struct task_struct *)bpf_get_current_task());
}

#endif /* LOOPSPY_TASK_IDS_BPF_H */
