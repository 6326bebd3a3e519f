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
/* Where the current frame hangs off a PyThreadState: either tstate->current_frame (3.13+), or
 * tstate->cframe->current_frame (3.11, 3.12); unused offsets are LOOPSPY_NO_OFFSET. */
const volatile __u32 off_tstate_current_frame = LOOPSPY_NO_OFFSET;
const volatile __u32 off_tstate_cframe = LOOPSPY_NO_OFFSET;
const volatile __u32 off_cframe_current_frame = LOOPSPY_NO_OFFSET;
/* _PyInterpreterFrame */
const volatile __u32 off_frame_code = 0;
const volatile __u32 off_frame_previous = 0;
const volatile __u32 off_frame_instr = 0;
const volatile __u32 off_frame_owner = 0;
const volatile __u32 frame_read_size = LOOPSPY_FRAME_READ_MAX;
/* PyCodeObject: where the bytecode starts, to turn an instruction pointer into an offset. */
const volatile __u32 off_code_adaptive = 0;
/* 3.14+: f_executable is a tagged _PyStackRef; these low bits are cleared. */
const volatile __u64 code_tag_mask = 0;
/* Frames owned by the C stack (3.12+ entry shims) are skipped, like CPython's own tracebacks do. */
const volatile __u32 owner_cstack = LOOPSPY_NO_OWNER;

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

    if (off_tstate_current_frame != LOOPSPY_NO_OFFSET) {
        if (bpf_probe_read_user(&frame, sizeof(frame), (void *)(tstate + off_tstate_current_frame)))
            *err = 1;
        return frame;
    }
    if (bpf_probe_read_user(&cframe, sizeof(cframe), (void *)(tstate + off_tstate_cframe))) {
        *err = 1;
        return 0;
    }
    if (!cframe) /* a thread state that runs no Python code (yet, or any more) */
        return 0;
    if (bpf_probe_read_user(&frame, sizeof(frame), (void *)(cframe + off_cframe_current_frame)))
        *err = 1;
    return frame;
}

struct walk_ctx {
    struct loopspy_sample *ev;
    struct frame_buf *buf;
    __u64 frame; /* the next frame to read, 0 at the end of the chain */
    __u32 n;     /* frames stored so far */
};

/* One step of the frame walk: read the frame, keep it unless CPython hides it, move outward. */
static long walk_one_frame(__u32 index, void *data)
{
    struct walk_ctx *w = data;
    if (!w->frame)
        return 1;
    __u32 read_size = frame_read_size;
    if (read_size > LOOPSPY_FRAME_READ_MAX)
        read_size = LOOPSPY_FRAME_READ_MAX;
    if (bpf_probe_read_user(w->buf->bytes, read_size, (void *)w->frame)) {
        w->ev->h.flags |= LOOPSPY_SAMPLE_READ_ERROR;
        return 1;
    }
    __u8 owner = field_u8(w->buf, off_frame_owner);
    if (owner != owner_cstack) {
        __u64 code = field_u64(w->buf, off_frame_code) & ~code_tag_mask;
        __u64 instr = field_u64(w->buf, off_frame_instr);
        struct loopspy_frame *f = &w->ev->frames[w->n & (LOOPSPY_MAX_FRAMES - 1)];
        f->code = code;
        f->offset = (__s32)(instr - (code + off_code_adaptive));
        f->owner = owner;
        w->n++;
    }
    w->frame = field_u64(w->buf, off_frame_previous);
    return 0;
}

/* Walk the frame chain of `tid` into the per-CPU scratch sample and emit it. */
static __always_inline int sample_thread(__u32 kind, __u32 tid)
{
    __u32 zero = 0;
    __u64 *tstate = bpf_map_lookup_elem(&thread_states, &tid);
    if (!tstate) {
        __u64 one = 1, *n = bpf_map_lookup_elem(&unknown_tids, &tid);
        if (n)
            __sync_fetch_and_add(n, 1);
        else
            bpf_map_update_elem(&unknown_tids, &tid, &one, BPF_NOEXIST);
        count(LOOPSPY_STAT_NO_TSTATE);
        return 0;
    }
    struct loopspy_sample *ev = bpf_map_lookup_elem(&sample_scratch, &zero);
    struct frame_buf *buf = bpf_map_lookup_elem(&frame_scratch, &zero);
    if (!ev || !buf)
        return 0;

    int err = 0;
    __u64 frame = current_frame(*tstate, &err);
    if (err) {
        count(LOOPSPY_STAT_LOST_READ);
        return 0;
    }

    ev->h.kind = kind;
    ev->h.tid = tid;
    ev->h.ts_ns = bpf_ktime_get_ns();
    ev->h.flags = 0;

    struct walk_ctx walk = {
        .ev = ev,
        .buf = buf,
        .frame = frame,
        .n = 0,
    };
    /* bpf_loop has the verifier check one step, not LOOPSPY_MAX_FRAMES unrolled copies. */
    bpf_loop(LOOPSPY_MAX_FRAMES, walk_one_frame, &walk, 0);
    __u32 n = walk.n;
    if (walk.frame && !(ev->h.flags & LOOPSPY_SAMPLE_READ_ERROR))
        ev->h.flags |= LOOPSPY_SAMPLE_TRUNCATED;
    if (n > LOOPSPY_MAX_FRAMES)
        n = LOOPSPY_MAX_FRAMES;
    ev->h.nframes = n;

    count(LOOPSPY_STAT_SAMPLES);
    if (ev->h.flags & LOOPSPY_SAMPLE_READ_ERROR)
        count(LOOPSPY_STAT_PARTIAL);
    if (ev->h.flags & LOOPSPY_SAMPLE_TRUNCATED)
        count(LOOPSPY_STAT_TRUNCATED);

    __u64 size = sizeof(ev->h) + (__u64)n * sizeof(struct loopspy_frame);
    if (size > sizeof(*ev))
        size = sizeof(*ev);
    if (bpf_ringbuf_output(&events, ev, size, 0)) {
        count(LOOPSPY_STAT_LOST_RINGBUF);
        return 0;
    }
    count(LOOPSPY_STAT_EMITTED);
    return 0;
}

SEC("perf_event")
int on_cpu_sample(struct bpf_perf_event_data *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    if ((__u32)(id >> 32) != target_tgid)
        return 0;
    return sample_thread(LOOPSPY_EVENT_ON_CPU, (__u32)id);
}
