/* Structures shared by the BPF programs (loopspy.bpf.c) and the user-space loader (sampler.cpp).
 * Plain C with fixed-width types so both compilers lay them out identically. */
#ifndef LOOPSPY_BPF_SHARED_H
#define LOOPSPY_BPF_SHARED_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Frames walked per sample. Deeper stacks keep their innermost frames and carry
 * LOOPSPY_SAMPLE_TRUNCATED. A power of two, so an index can be masked for the verifier. */
#define LOOPSPY_MAX_FRAMES 256
/* Bytes of one frame read at once (a _PyInterpreterFrame, or before 3.11 a PyFrameObject: a
 * version's fields all lie below this). */
#define LOOPSPY_FRAME_READ_MAX 128

enum loopspy_event_kind {
    LOOPSPY_EVENT_ON_CPU = 1,   /* a perf_event cpu-clock sample of a target thread (struct loopspy_sample) */
    LOOPSPY_EVENT_OFF_CPU = 2,  /* an interval a target thread spent off-CPU (struct loopspy_sample) */
    LOOPSPY_EVENT_SELECTOR = 3, /* a selector wait of a target thread (struct loopspy_selector_event) */
    LOOPSPY_EVENT_PROCESS = 4,  /* a target process forked a child or exec'd (struct loopspy_process_event) */
};

enum loopspy_process_change {
    LOOPSPY_PROCESS_FORKED = 1, /* `pid` is a new child of `parent`, already a target (follow_children) */
    LOOPSPY_PROCESS_EXECED = 2, /* `pid` replaced its program: its memory is a new one */
};

/* The values of the kernel's `targets` map. */
enum loopspy_target {
    LOOPSPY_TARGET_SAMPLED = 1,  /* sampled and tracked, its children followed */
    LOOPSPY_TARGET_FOLLOWED = 2, /* not Python: only its children are followed */
};

struct loopspy_process_event {
    __u32 kind;   /* LOOPSPY_EVENT_PROCESS */
    __u32 change; /* enum loopspy_process_change */
    __u32 pid;
    __u32 parent; /* FORKED: the target process that forked it */
    __u64 ts_ns;
};

/* Why a thread left the CPU (off_flags of an OFF_CPU event). */
enum loopspy_off_flags {
    LOOPSPY_OFF_PREEMPTED = 1, /* still runnable: the scheduler took the CPU away */
    LOOPSPY_OFF_GIL = 2,       /* asleep on a futex inside its interpreter's GIL: waiting to take it */
};

/* The GILs of a target process (one per interpreter that has its own, from 3.12): a thread that
 * sleeps on a futex whose address is inside one is waiting for that GIL. */
#define LOOPSPY_MAX_GILS 4
struct loopspy_gils {
    __u64 start[LOOPSPY_MAX_GILS];
    __u32 size;        /* sizeof(struct _gil_runtime_state) */
    __u32 count;
    __u32 last_holder; /* offsetof(struct _gil_runtime_state, last_holder): the thread state that
                        * took it last, which holds it while a waiter sleeps */
    __u32 pad;
};

#define LOOPSPY_NO_SYSCALL (-1)

enum loopspy_sample_flags {
    LOOPSPY_SAMPLE_TRUNCATED = 1,  /* more frames than LOOPSPY_MAX_FRAMES: the outermost are missing */
    LOOPSPY_SAMPLE_READ_ERROR = 2, /* a frame read failed mid-walk: the frames kept are the inner ones */
};

/* One Python frame as seen in the kernel: no strings, just what user space needs to name it. */
struct loopspy_frame {
    __u64 code;      /* PyCodeObject address (f_code / f_executable with tag bits cleared) */
    __s32 offset;    /* byte offset of the current instruction in co_code (-2 before the first) */
    __u32 owner;     /* the frame's owner byte (thread, generator, frame object, ...); before 3.11
                      * also LOOPSPY_FRAME_FIRSTLINE_SEEN and, in bits 8-30, the code object's
                      * co_firstlineno as the walk read it (see loopspy_frame_firstline) */
};

/* Before 3.11 every code object is the same size, so one freed at start-up is soon replaced by
 * another at the same address, before user space has named the samples of the first. The walk
 * reads each frame's co_firstlineno with its code pointer; user space names a frame only if the
 * code object it finds there has that first line. */
#define LOOPSPY_FRAME_FIRSTLINE_SEEN 0x80000000u
#define LOOPSPY_FRAME_FIRSTLINE_MASK 0x7fffffu
static inline __u32 loopspy_frame_firstline(__u32 owner)
{
    return (owner >> 8) & LOOPSPY_FRAME_FIRSTLINE_MASK;
}

#define LOOPSPY_TASK_NAME_BYTES 64

struct loopspy_sample_header {
    __u32 kind;      /* enum loopspy_event_kind */
    __u32 tid;
    __u64 ts_ns;     /* CLOCK_MONOTONIC; OFF_CPU: when the thread left the CPU */
    __u32 flags;     /* enum loopspy_sample_flags */
    __u32 nframes;   /* frames that follow, innermost first */
    __u64 duration_ns; /* OFF_CPU: how long it was off */
    __s32 syscall;   /* OFF_CPU: syscall in progress when it left, or LOOPSPY_NO_SYSCALL */
    __u32 off_flags; /* OFF_CPU: enum loopspy_off_flags */
    __u64 coro;      /* the coroutine (or generator) object of the outermost generator-owned frame
                      * walked: the running task's coroutine, 0 if none */
    __u32 pid;       /* the thread's process, so user space can place the thread of a process it
                      * has not listed the threads of yet (a child just forked) */
    __u32 pad;
    __u64 task;          /* the asyncio Task driving `coro` at that instant, 0 if
                          * none or unknown (struct loopspy_task_finder) */
    __u64 task_name_obj; /* its task_name object (a str, or from 3.12 an int counter), and that
                          * object's first bytes, so a task that ends at once is still named */
    __u64 gil_holder;    /* OFF_CPU with LOOPSPY_OFF_GIL: the thread state holding the GIL when the
                          * thread went to sleep on it, 0 if unread */
    __u8 task_name[LOOPSPY_TASK_NAME_BYTES];
};

/* How the kernel finds the task running a coroutine, per process (user space fills it once it
 * has found asyncio in the process): from 3.14 the thread state's asyncio_running_task; before,
 * asyncio's dict of current tasks (loop -> task), whose few entries are scanned for the task whose
 * coroutine is the sample's. Either way the task counts only if its coroutine is the sample's. */
#define LOOPSPY_MAX_CURRENT_TASKS 8
struct loopspy_task_finder {
    __u64 current_tasks;       /* 3.11-3.13: the dict object; 0 for none */
    __u32 tstate_running_task; /* 3.14+: its offset in the thread state; 0 for none */
    __u32 task_coro, task_name; /* offsets in the C Task */
    /* PyDictKeysObject: the index table's size is 1 << dk_log2_index_bytes (3.11+), or derived
     * from dk_size (before: LOOPSPY_NO_OFFSET in keys_log2_index_bytes) */
    __u32 dict_keys, keys_log2_index_bytes, keys_size, keys_nentries, keys_indices, entry_size, entry_value;
};

/* A thread's wait in its selector. Short waits (< fold_ns) after short busy periods (< fold_ns)
 * are not reported one by one: they are folded into the next reported wait, whose counters
 * carry them, so every long busy period is bounded exactly and every total stays exact. */
struct loopspy_selector_event {
    __u32 kind;              /* LOOPSPY_EVENT_SELECTOR */
    __u32 tid;
    __s32 syscall;
    __u32 folded_waits;
    __u64 previous_leave_ns; /* when the previous wait (reported or folded) returned; 0 if none */
    __u64 enter_ns;
    __u64 leave_ns;
    __u64 folded_wait_ns;    /* total wait time of the folded waits */
    __u64 folded_busy_ns;    /* total busy time before each folded wait */
};

struct loopspy_sample {
    struct loopspy_sample_header h;
    struct loopspy_frame frames[LOOPSPY_MAX_FRAMES];
};

/* Counters, one slot each in a per-CPU array; user space sums them. */
enum loopspy_stat {
    LOOPSPY_STAT_SAMPLES = 0,     /* samples that hit a thread of the target */
    LOOPSPY_STAT_EMITTED,         /* samples written to the ring buffer */
    LOOPSPY_STAT_LOST_RINGBUF,    /* ring buffer full */
    LOOPSPY_STAT_LOST_READ,       /* thread state or current frame unreadable */
    LOOPSPY_STAT_NO_TSTATE,       /* tid not (yet) known to be a Python thread */
    LOOPSPY_STAT_PARTIAL,         /* emitted with LOOPSPY_SAMPLE_READ_ERROR */
    LOOPSPY_STAT_TRUNCATED,       /* emitted with LOOPSPY_SAMPLE_TRUNCATED */
    LOOPSPY_STAT_OFF_CPU,         /* off-CPU intervals emitted */
    LOOPSPY_STAT_LOST_OFF_CPU,    /* off-CPU intervals lost (no room to keep or emit them) */
    LOOPSPY_STAT_SELECTOR,        /* selector events emitted */
    LOOPSPY_STAT_LOST_SELECTOR,   /* selector events lost (ring buffer full) */
    LOOPSPY_STAT_LOST_PROCESS,    /* process events lost, or children that could not be followed */
    LOOPSPY_STAT_STALE_SELECTOR,  /* a thread left the CPU in another syscall while marked in its
                                   * selector (its selector's return was never seen): recovered */
    LOOPSPY_STAT__COUNT,
};

/* A stack's shape: its code objects in order (innermost first), line numbers aside. Both sides
 * compute it the same way (FNV-1a over the code addresses) to agree on which shapes are known. */
#define LOOPSPY_SHAPE_SEED 0xcbf29ce484222325ull
#define LOOPSPY_KNOWN_SHAPES 8192 /* entries of the kernel's LRU map of named shapes */
static inline __u64 loopspy_shape_step(__u64 shape, __u64 code)
{
    return (shape ^ code) * 0x100000001b3ull;
}

#define LOOPSPY_NO_OFFSET 0xffffffffu
#define LOOPSPY_NO_OWNER 0xffu

/* What the frame walk needs to know of the interpreter's structs: one struct for every supported
 * CPython version (3.8 to 3.15), set by the loader as the program's read-only `frame_layout`. Offsets a
 * version does not have are LOOPSPY_NO_OFFSET, owners it does not have LOOPSPY_NO_OWNER. */
struct loopspy_frame_layout {
    /* Where the current frame hangs off a PyThreadState: tstate->current_frame (3.13+), or
     * tstate->cframe->current_frame (3.11, 3.12). */
    __u32 tstate_current_frame;
    __u32 tstate_cframe;
    __u32 cframe_current_frame;
    /* _PyInterpreterFrame, and how many of its first bytes one read takes. */
    __u32 frame_code;
    __u32 frame_previous;
    __u32 frame_instr;
    __u32 frame_owner;
    __u32 frame_read_size;
    /* PyCodeObject: where the bytecode starts, to turn an instruction pointer into an offset. */
    __u32 code_adaptive;
    /* Frames owned by the C stack (3.12+ entry shims) are skipped, as CPython's own tracebacks
     * skip them; a generator-owned frame marks a coroutine. */
    __u32 owner_cstack;
    __u32 owner_generator;
    __u32 reserved;
    /* 3.14+: f_executable is a tagged _PyStackRef; these low bits are cleared. */
    __u64 code_tag_mask;
    /* 3.11+: a generator-owned frame is embedded this far into its coroutine object. */
    __u32 gen_iframe;
    /* Before 3.11 a frame is a PyFrameObject: tstate->frame is the innermost, the instruction is
     * f_lasti (times lasti_unit bytes), and f_gen (if set) is its generator. All
     * LOOPSPY_NO_OFFSET from 3.11 on. */
    __u32 tstate_frame;
    __u32 frame_lasti;
    __u32 lasti_unit;
    __u32 frame_gen;
    __u32 code_firstlineno; /* offsetof(PyCodeObject, co_firstlineno), read per frame */
};

#endif
