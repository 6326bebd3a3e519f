"""A reader for loopspy recordings (.lspy), after docs/recording-format.md (format 1.x).

Only what the benchmarks need: metadata, the string/frame/stack tables, the samples (thread,
kind, CLOCK_MONOTONIC time, weight, stack, flags), the number of selector waits, the loss
counters and the end. It is an independent reading of the specification, so the suite does not
have to trust loopspy's own summary for the figures it checks (samples in a time window, the
first sample's time, the share of fully symbolized samples).
"""
import struct
import zlib

from .procs import BenchError

MAGIC = b"\x89LOOPSPY"
META, STRINGS, FRAMES, STACKS, THREADS, THREAD_NAMES, SAMPLES, SELECTOR_WAITS, LOSS, END = range(1, 11)
ON_CPU, OFF_CPU = 1, 2
FRAME_SPECIAL = 2
HEAD_WEIGHT, HEAD_FLAGS, HEAD_OFF_FLAGS, HEAD_SYSCALL = 4, 8, 16, 32


class FormatError(BenchError):
    """A recording this reader cannot read: the suite stops (one line), as for any failed run."""


class _In:
    __slots__ = ("b", "i")

    def __init__(self, b):
        self.b, self.i = b, 0

    def u(self):
        b, i, shift, v = self.b, self.i, 0, 0
        while True:
            if i >= len(b):
                raise FormatError("a value past the end of a chunk")
            x = b[i]
            i += 1
            v |= (x & 0x7F) << shift
            if x < 0x80:
                self.i = i
                return v
            shift += 7
            if shift > 63:
                raise FormatError("a varint over 64 bits")

    def s(self):
        v = self.u()
        return (v >> 1) ^ -(v & 1)

    def str(self):
        n = self.u()
        v = self.b[self.i:self.i + n]
        self.i += n
        return v.decode("utf-8", "replace")


def _wrap(v):
    """Two's-complement 64-bit arithmetic, as the format's deltas."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >> 63 else v


class Recording:
    def __init__(self):
        self.meta = {}
        self.strings = []
        self.frames = []  # (name, file, line, flags) as text
        self.stacks = []  # tuples of frame ids, outermost first
        self.threads = []  # index -> tid
        self.samples = []  # (tid, kind, time_ns, weight_ns, stack, flags)
        self.selector_waits = 0
        self.loss = None
        self.end_ns = None
        self.ending = None

    # ---- queries ----
    def on_cpu(self, tid=None, start_ns=None, end_ns=None):
        return [s for s in self.samples if s[1] == ON_CPU and (tid is None or s[0] == tid)
                and (start_ns is None or s[2] >= start_ns) and (end_ns is None or s[2] < end_ns)]

    def stack_names(self, stack):
        return [self.frames[f][0] for f in self.stacks[stack]]

    def fully_symbolized(self, sample):
        """No flag (truncated, partial, unnamed) and no special frame such as <unknown>."""
        return sample[5] == 0 and not any(self.frames[f][3] & FRAME_SPECIAL for f in self.stacks[sample[4]])


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != MAGIC:
        raise FormatError(f"{path}: not a loopspy recording")
    major, minor = struct.unpack_from("<HH", data, 8)
    if major != 1:
        raise FormatError(f"{path}: recording format {major}.{minor}, this reader knows 1.x")
    rec = Recording()
    rec.meta["format"] = f"{major}.{minor}"
    pos = 16
    while pos + 24 <= len(data):
        ctype, flags, stored, raw, body_crc, header_crc = struct.unpack_from("<6I", data, pos)
        if zlib.crc32(data[pos:pos + 20]) != header_crc:
            raise FormatError(f"{path}: a damaged chunk header at byte {pos}")
        body = data[pos + 24:pos + 24 + stored]
        if len(body) != stored or zlib.crc32(body) != body_crc:
            raise FormatError(f"{path}: a cut or damaged chunk at byte {pos}")
        if flags & 1:
            body = zlib.decompress(body)
        _decode(rec, ctype, _In(body))
        pos += 24 + stored
    if rec.ending is None:
        raise FormatError(f"{path}: no END chunk (the recorder did not finish it)")
    return rec


def _decode(rec, ctype, i):
    if ctype == META:
        m = rec.meta
        m["tool_version"], m["command_line"] = i.str(), i.str()
        m["pid"], m["target_command"] = i.s(), i.str()
        m["python_hex"], m["python_binary"], m["kernel"], m["clock"] = i.u(), i.str(), i.str(), i.str()
        m["rate_hz"], m["start_ns"] = i.s(), i.s()
    elif ctype == STRINGS:
        first, n = i.u(), i.u()
        _expect(first, len(rec.strings), "strings")
        lengths = [i.u() for _ in range(n)]
        for ln in lengths:
            rec.strings.append(i.b[i.i:i.i + ln].decode("utf-8", "replace"))
            i.i += ln
    elif ctype == FRAMES:
        first, n = i.u(), i.u()
        _expect(first, len(rec.frames), "frames")
        name = file = 0
        for _ in range(n):
            name, file = name + i.s(), file + i.s()
            line, flags = i.s(), i.u()
            rec.frames.append((rec.strings[name], rec.strings[file], line, flags))
    elif ctype == STACKS:
        first, n = i.u(), i.u()
        _expect(first, len(rec.stacks), "stacks")
        for _ in range(n):
            depth = i.u()
            rec.stacks.append(tuple(i.u() for _ in range(depth)))
    elif ctype == THREADS:
        first, n = i.u(), i.u()
        _expect(first, len(rec.threads), "threads")
        prev = 0
        for _ in range(n):
            prev = _wrap(prev + i.s())
            rec.threads.append(prev)
    elif ctype == SAMPLES:
        first, n = i.u(), i.u()
        _expect(first, len(rec.samples), "samples")
        default_weight, base = i.s(), i.s()
        thr = [i.u() for _ in range(n)]
        heads = [i.u() for _ in range(n)]
        times = [i.s() for _ in range(n)]
        stacks = [i.u() for _ in range(n)]
        weights = [i.s() if h & HEAD_WEIGHT else default_weight for h in heads]
        flags = [i.u() if h & HEAD_FLAGS else 0 for h in heads]
        for h in heads:  # off-CPU flags and syscalls: read past them
            if h & HEAD_OFF_FLAGS:
                i.u()
        for h in heads:
            if h & HEAD_SYSCALL:
                i.s()
        predicted = {}
        for k in range(n):
            t = _wrap(predicted.get(thr[k], base) + times[k])
            predicted[thr[k]] = _wrap(t + weights[k])
            rec.samples.append((rec.threads[thr[k]], heads[k] & 3, t, weights[k], stacks[k], flags[k]))
    elif ctype == SELECTOR_WAITS:
        i.u()
        rec.selector_waits += i.u()
    elif ctype == LOSS:
        rec.loss = _loss(i)
    elif ctype == END:
        rec.end_ns, rec.ending = i.s(), i.str()
        rec.loss = _loss(i)


def _loss(i):
    loss = dict(zip(("ringbuf_full", "read_failed", "no_thread_state", "off_cpu", "selector"),
                    (i.u() for _ in range(5))))
    if i.i < len(i.b):  # 1.3: the rate's counters
        loss.update(zip(("undelivered", "native_thread", "target_cpu_ns"), (i.u() for _ in range(3))))
    return loss


def _expect(first, have, what):
    if first != have:
        raise FormatError(f"a {what} chunk starts at id {first}, expected {have}")
