#!/usr/bin/env python3
"""Find, in a live interpreter's own memory, where the fields loopspy reads before 3.11 lie.

Usage:  INTERP tools/dump_frame_objects.py OUT.json

Run it under 3.8, 3.9 and 3.10, e.g.

    /root/.pyenv/versions/3.9.18/bin/python3 tools/dump_frame_objects.py tests/data/frame_objects/3.9.json

Nothing here comes from the headers: each offset is where a known value (the id of a frame, a
code object, a coroutine, a thread state's frame; a frame's f_lasti; a dict's entry count) is
found when the object's memory is searched for it, and it must be the one place that holds
it. tests/unit/test_debug_offsets.cpp checks symbolizer/cpython/layouts_generated.inc (derived
from the headers by tools/gen_layouts.py) against these files.
"""
import asyncio
import ctypes
import json
import sys

if not (3, 8) <= sys.version_info[:2] < (3, 11):
    sys.exit("for 3.8, 3.9 and 3.10 (frame objects)")

def find(obj, value, size=8, limit=None):
    """The one offset inside `obj` (its type's basic size, or `limit` bytes) at which it holds
    `value` (8 or 4 bytes wide)."""
    addr, limit = id(obj), limit or type(obj).__basicsize__
    kind = ctypes.c_uint64 if size == 8 else ctypes.c_int32
    hits = [off for off in range(0, limit - size + 1, size) if kind.from_address(addr + off).value == value]
    if len(hits) != 1:
        raise SystemExit(f"expected one place holding {value:#x} in {type(obj).__name__} at {addr:#x}, found {hits}")
    return hits[0]


pyapi = ctypes.pythonapi
pyapi.PyThreadState_Get.restype = ctypes.c_void_p
out = {"python": "%d.%d.%d" % sys.version_info[:3], "generator": "tools/dump_frame_objects.py"}


def sample(a, b=2):
    return a + b


code = sample.__code__
out["code_firstlineno"] = find(code, code.co_firstlineno, size=4, limit=64)
out["code_filename"] = find(code, id(code.co_filename))
out["code_name"] = find(code, id(code.co_name))
out["code_code"] = find(code, id(code.co_code))
table = code.co_linetable if sys.version_info >= (3, 10) else code.co_lnotab
out["code_linetable"] = find(code, id(table))
out["code_size"] = type(code).__basicsize__


def caller():
    return callee()


def callee():
    me = sys._getframe()
    # The thread state's innermost frame: searched with ctypes only (a Python helper would be
    # the innermost frame itself).
    ts = pyapi.PyThreadState_Get()
    hits = []
    for off in range(0, 512, 8):  # a loop, not a comprehension: that would be a frame of its own
        if ctypes.c_uint64.from_address(ts + off).value == id(me):
            hits.append(off)
    out["tstate_frame"] = hits
    out["frame_previous"] = find(me, id(me.f_back))
    out["frame_code"] = find(me, id(me.f_code))
    return me


frame = caller()
if len(out["tstate_frame"]) != 1:
    raise SystemExit(f"the thread state holds its frame at {out['tstate_frame']}")
out["tstate_frame"] = out["tstate_frame"][0]


def two_stops():
    yield 1
    x = [i for i in range(3)]  # a few instructions between the two
    yield x


def lasti_candidates(frame, lasti):
    """Offsets of the ints in a suspended frame that hold f_lasti, in bytes or in code units."""
    size = type(frame).__basicsize__
    return {off: ctypes.c_int32.from_address(id(frame) + off).value for off in range(0, size - 3, 4)
            if ctypes.c_int32.from_address(id(frame) + off).value in (lasti, lasti // 2)}


# A generator's frame holds still between its yields: its f_lasti there is read twice.
gen = two_stops()
next(gen)
first = lasti_candidates(gen.gi_frame, gen.gi_frame.f_lasti)
next(gen)
second = lasti_candidates(gen.gi_frame, gen.gi_frame.f_lasti)
there = [off for off in first if off in second and first[off] != second[off]]
if len(there) != 1:
    raise SystemExit(f"f_lasti candidates: {there}")
units = second[there[0]] * 2 == gen.gi_frame.f_lasti and second[there[0]] != gen.gi_frame.f_lasti
out["frame_lasti"] = there[0]
out["lasti_unit"] = 2 if units else 1


async def leaf():
    await asyncio.sleep(0)


async def main():
    task = asyncio.ensure_future(leaf())
    await asyncio.sleep(0)
    coro = task.get_coro()
    out["gen_frame"] = find(coro, id(coro.cr_frame))
    out["frame_gen"] = find(coro.cr_frame, id(coro))
    me = asyncio.current_task().get_coro()
    assert ctypes.c_uint64.from_address(id(sys._getframe()) + out["frame_gen"]).value == id(me)
    await task


asyncio.run(main())

d = {"k%d" % i: i for i in range(20)}
keys = ctypes.c_uint64.from_address(id(d) + 32).value
hits = [off for off in range(0, 64, 8) if ctypes.c_int64.from_address(keys + off).value == 20]
if len(hits) != 1:
    raise SystemExit(f"dk_nentries candidates: {hits}")
out["dictkeys_nentries"] = hits[0]

with open(sys.argv[1], "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
    f.write("\n")
print(sys.argv[1], out, file=sys.stderr)
