/* SPDX-License-Identifier: GPL-2.0 */
/* The CPython frame walk: from a thread state to its frames, innermost first, one read per frame.
 * A frame is a _PyInterpreterFrame (3.11+) or a heap PyFrameObject (3.8-3.10); frame_layout says
 * which, and where their fields are. Included by loopspy.bpf.c after its options (frame_layout)
 * and shared maps. */
#ifndef LOOPSPY_FRAME_WALK_BPF_H
#define LOOPSPY_FRAME_WALK_BPF_H

/* A walk's scratch space: the frame just read, and where the walk is. The position lives in
 * this map value, not on the stack: the verifier does not track a map value's contents, so it
 * checks the walk's step once or twice instead of once per frame count it could reach (256). */
struct frame_buf {
    __u8 bytes[LOOPSPY_FRAME_READ_MAX + 8];
    __u64 frame; /* the next frame to read, 0 at the end of the chain */
    __u64 shape; /* loopspy_shape_step over the stored frames' code objects */
    __u32 n;     /* frames stored so far */
    __u32 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct frame_buf);
} frame_scratch SEC(".maps");

static __always_inline __u64 field_u64(const struct frame_buf *buf, __u32 off)
{
    return *(const __u64 *)&buf->bytes[off & (LOOPSPY_FRAME_READ_MAX - 1)];
}

static __always_inline __u8 field_u8(const struct frame_buf *buf, __u32 off)
{
    return buf->bytes[off & (LOOPSPY_FRAME_READ_MAX - 1)];
}

static __always_inline __s32 field_s32(const struct frame_buf *buf, __u32 off)
{
    return *(const __s32 *)&buf->bytes[off & (LOOPSPY_FRAME_READ_MAX - 1)];
}

/* The frame the thread executes now, or 0 with *err set when the chain head cannot be read. */
static __always_inline __u64 current_frame(__u64 tstate, int *err)
{
    __u64 frame = 0, cframe = 0;

    if (frame_layout.tstate_frame != LOOPSPY_NO_OFFSET) {
        if (bpf_probe_read_user(&frame, sizeof(frame), (void *)(tstate + frame_layout.tstate_frame)))
            *err = 1;
        return frame;
    }
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
};

/* One step of the frame walk: read the frame, keep it unless CPython hides it, move outward. */
static long walk_one_frame(__u32 index, void *data)
{
    struct walk_ctx *w = data;
    if (!w->buf->frame)
        return 1;
    __u32 read_size = frame_layout.frame_read_size;
    if (read_size > LOOPSPY_FRAME_READ_MAX)
        read_size = LOOPSPY_FRAME_READ_MAX;
    if (bpf_probe_read_user(w->buf->bytes, read_size, (void *)w->buf->frame)) {
        w->ev->h.flags |= LOOPSPY_SAMPLE_READ_ERROR;
        return 1;
    }
    __u64 code = field_u64(w->buf, frame_layout.frame_code) & ~frame_layout.code_tag_mask;
    __u8 owner;
    __s32 offset;
    __u64 coro = 0;
    __u32 tag = 0;
    if (frame_layout.frame_lasti != LOOPSPY_NO_OFFSET) {
        /* A PyFrameObject: no owner byte; f_gen names its generator. */
        coro = field_u64(w->buf, frame_layout.frame_gen);
        owner = coro ? frame_layout.owner_generator : 0;
        offset = field_s32(w->buf, frame_layout.frame_lasti) * (__s32)frame_layout.lasti_unit;
        __s32 first = 0;
        if (code && !bpf_probe_read_user(&first, sizeof(first), (void *)(code + frame_layout.code_firstlineno)))
            tag = LOOPSPY_FRAME_FIRSTLINE_SEEN | (((__u32)first & LOOPSPY_FRAME_FIRSTLINE_MASK) << 8);
    } else {
        owner = field_u8(w->buf, frame_layout.frame_owner);
        offset = (__s32)(field_u64(w->buf, frame_layout.frame_instr) - (code + frame_layout.code_adaptive));
        if (owner == frame_layout.owner_generator)
            coro = w->buf->frame - frame_layout.gen_iframe;
    }
    if (owner != frame_layout.owner_cstack) {
        struct loopspy_frame *f = &w->ev->frames[w->buf->n & (LOOPSPY_MAX_FRAMES - 1)];
        f->code = code;
        f->offset = offset;
        f->owner = owner | tag;
        w->buf->n++;
        w->buf->shape = loopspy_shape_step(w->buf->shape, code);
        if (coro)
            w->ev->h.coro = coro;
    }
    w->buf->frame = field_u64(w->buf, frame_layout.frame_previous);
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
    ev->h.coro = 0;
    buf->frame = frame;
    buf->n = 0;
    buf->shape = LOOPSPY_SHAPE_SEED;
    struct walk_ctx walk = {.ev = ev, .buf = buf};
    /* bpf_loop has the verifier check one step, not LOOPSPY_MAX_FRAMES unrolled copies. */
    bpf_loop(LOOPSPY_MAX_FRAMES, walk_one_frame, &walk, 0);
    __u32 n = buf->n;
    if (buf->frame && !(ev->h.flags & LOOPSPY_SAMPLE_READ_ERROR))
        ev->h.flags |= LOOPSPY_SAMPLE_TRUNCATED;
    if (n > LOOPSPY_MAX_FRAMES)
        n = LOOPSPY_MAX_FRAMES;
    ev->h.nframes = n;
    *shape = buf->shape;
    return 0;
}

#endif /* LOOPSPY_FRAME_WALK_BPF_H */
