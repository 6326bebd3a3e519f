/* SPDX-License-Identifier: GPL-2.0 */
/* The asyncio Task running a sample's coroutine, taken at the sampled instant (not from a task
 * snapshot, which a task that lives a few milliseconds never reaches), with its name's first
 * bytes. Included by loopspy.bpf.c after the frame walk. */
#ifndef LOOPSPY_TASK_CAPTURE_BPF_H
#define LOOPSPY_TASK_CAPTURE_BPF_H

/* tgid -> how to find its running tasks (user space fills it once asyncio is imported). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, struct loopspy_task_finder);
} task_finders SEC(".maps");

static __always_inline __u64 read_user_u64(__u64 addr)
{
    __u64 v = 0;
    if (bpf_probe_read_user(&v, sizeof(v), (const void *)addr))
        return 0;
    return v;
}

/* The task among asyncio's current tasks (loop -> task, a dict of a few entries) whose
 * coroutine is `coro`, or 0. */
static __always_inline __u64 current_task_of(const struct loopspy_task_finder *f, __u64 coro)
{
    __u64 keys = read_user_u64(f->current_tasks + f->dict_keys);
    if (!keys)
        return 0;
    __u64 index_bytes = 0;
    if (f->keys_log2_index_bytes != LOOPSPY_NO_OFFSET) {
        __u8 log2_index_bytes = 0;
        if (bpf_probe_read_user(&log2_index_bytes, 1, (const void *)(keys + f->keys_log2_index_bytes)))
            return 0;
        if (log2_index_bytes > 24)
            return 0;
        index_bytes = 1ull << log2_index_bytes;
    } else {
        /* Before 3.11: dk_size slots of 1, 2, 4 or 8 bytes, by how large dk_size is. */
        __u64 size = read_user_u64(keys + f->keys_size);
        if (size == 0 || size > (1ull << 24))
            return 0;
        index_bytes = size * (size <= 0xff ? 1 : size <= 0xffff ? 2 : 4);
    }
    __s64 entries = (__s64)read_user_u64(keys + f->keys_nentries);
    if (entries <= 0)
        return 0;
    __u64 entry = keys + f->keys_indices + index_bytes;
    for (int i = 0; i < LOOPSPY_MAX_CURRENT_TASKS; i++) {
        if (i >= entries)
            break;
        __u64 task = read_user_u64(entry + f->entry_value);
        if (task && read_user_u64(task + f->task_coro) == coro)
            return task;
        entry += f->entry_size;
    }
    return 0;
}

/* Fills ev->h.task (0 if none) for a walked stack with a coroutine frame. */
static __always_inline void capture_task(struct loopspy_sample *ev, __u32 pid, __u64 tstate)
{
    ev->h.task = 0;
    ev->h.task_name_obj = 0;
    if (!ev->h.coro)
        return;
    struct loopspy_task_finder *f = bpf_map_lookup_elem(&task_finders, &pid);
    if (!f)
        return;
    __u64 coro = ev->h.coro;
    __u64 task = 0;
    if (f->tstate_running_task) {
        task = read_user_u64(tstate + f->tstate_running_task);
        if (task && read_user_u64(task + f->task_coro) != coro)
            task = 0; /* another task's step (one coroutine awaiting another's is not it) */
    } else if (f->current_tasks) {
        task = current_task_of(f, coro);
    }
    if (!task)
        return;
    ev->h.task = task;
    __u64 name = read_user_u64(task + f->task_name);
    ev->h.task_name_obj = name;
    if (name && bpf_probe_read_user(ev->h.task_name, sizeof(ev->h.task_name), (const void *)name))
        ev->h.task_name_obj = 0;
}

#endif /* LOOPSPY_TASK_CAPTURE_BPF_H */
