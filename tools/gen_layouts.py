#!/usr/bin/env python3
"""Derive the CPython memory-layout facts loopspy needs from each version's own headers.

For every supported minor version this compiles a small C program against that version's
installed headers (with Py_BUILD_CORE so the internal structs are visible), which prints
offsetof/sizeof values, enum values and bitfield positions. The result is written as a C++
include file, symbolizer/cpython/layouts_generated.inc, holding one `PythonLayout` per version.

Usage:
    tools/gen_layouts.py                      # regenerate symbolizer/cpython/layouts_generated.inc
    tools/gen_layouts.py --check              # exit 1 if the committed file is out of date
    tools/gen_layouts.py --verify             # also read live objects of each interpreter
                                              # through ctypes with the derived offsets
    tools/gen_layouts.py --headers 3.14=DIR   # use another header directory for a version

Header sources (defaults):
    3.8-3.13: pyenv installs under $PYENV_ROOT (default /root/.pyenv)
    3.14-3.15: Debian sid libpython3.X-dev unpacked by scripts/fetch-sid-pythons.sh under
               ${LOOPSPY_PYTHONS_DIR:-$HOME/.cache/loopspy/pythons}/3.X/root
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "symbolizer" / "cpython" / "layouts_generated.inc"
PYENV_ROOT = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv"))
SID_DIR = Path(os.environ.get("LOOPSPY_PYTHONS_DIR", str(Path.home() / ".cache/loopspy/pythons")))
PYENV_VERSIONS = {8: "3.8.18", 9: "3.9.18", 10: "3.10.13", 11: "3.11.7", 12: "3.12.1", 13: "3.13.0"}
SID_MINORS = (14, 15)
ALL_MINORS = (8, 9, 10, 11, 12, 13, 14, 15)
NONE = "kNone"

# The struct this file fills; mirrored verbatim in symbolizer/cpython/layout.hpp.
STRUCT_TEXT = """\
struct PythonLayout {
  uint32_t minor;                       // 8..15
  // _PyRuntimeState
  uint64_t runtime_interpreters_head;   // offsetof(_PyRuntimeState, interpreters.head)
  // PyInterpreterState
  uint64_t interp_next, interp_threads_head, interp_id;
  // PyThreadState
  uint64_t tstate_next, tstate_interp, tstate_thread_id, tstate_native_thread_id;
  uint64_t tstate_cframe;               // 3.11/3.12: offsetof(PyThreadState, cframe); else kNone
  uint64_t cframe_current_frame;        // 3.11/3.12: offsetof(_PyCFrame, current_frame); else kNone
  uint64_t tstate_current_frame;        // 3.13+: offsetof(PyThreadState, current_frame); else kNone
  // _PyInterpreterFrame
  uint64_t frame_code;                  // f_code (3.11/3.12) or f_executable (3.13+)
  uint64_t frame_previous;
  uint64_t frame_instr;                 // prev_instr (3.11/3.12) or instr_ptr (3.13+)
  uint64_t frame_owner;
  uint64_t frame_localsplus;
  uint64_t frame_size;                  // sizeof(_PyInterpreterFrame)
  uint64_t frame_stacktop;              // 3.11-3.13: offsetof int stacktop (top of stack = localsplus[stacktop-1]); else kNone
  uint64_t frame_stackpointer;          // 3.14+: offsetof _PyStackRef *stackpointer (top of stack = stackpointer[-1]); else kNone
  uint8_t owner_thread, owner_generator, owner_frame_object, owner_cstack, owner_interpreter; // enum values; 0xff when absent
  uint8_t executable_tag_bits;          // 3.14+: low bits of _PyStackRef that are tags (mask them off), else 0
  // PyCodeObject
  uint64_t code_flags, code_argcount, code_firstlineno, code_filename, code_name, code_qualname,
           code_linetable, code_firsttraceable, code_code_adaptive, code_size_no_bytecode; // last = offsetof co_code_adaptive
  // PyUnicode (non-free-threaded build)
  uint64_t unicode_length, unicode_state, ascii_object_size, compact_unicode_object_size;
  uint8_t unicode_kind_shift, unicode_compact_bit, unicode_ascii_bit; // bit positions inside `state`
  // PyBytesObject
  uint64_t bytes_ob_size, bytes_ob_sval;
  // PyGenObject / PyCoroObject (frame embedded in the generator object in 3.11+)
  uint64_t gen_iframe;                  // offsetof(PyGenObject, gi_iframe) (3.11-3.13 name; find the 3.14/3.15 equivalent)
  uint64_t gen_frame_state;             // offsetof(PyGenObject, gi_frame_state)
  uint64_t gen_name, gen_qualname;
  int8_t gen_state_suspended;           // FRAME_SUSPENDED
  int8_t gen_state_yield_from;          // FRAME_SUSPENDED_YIELD_FROM (3.11 lacks it: FRAME_SUSPENDED)
  int8_t gen_state_executing;           // FRAME_EXECUTING
  // PyObject
  uint64_t object_type;                 // offsetof(PyObject, ob_type)
  uint64_t type_name;                   // offsetof(PyTypeObject, tp_name)
  // struct _gil_runtime_state: a thread waiting for the GIL sleeps on a futex inside it
  uint64_t runtime_gil;                 // 3.11: offsetof(_PyRuntimeState, ceval.gil) (the GIL itself); else kNone
  uint64_t interp_gil;                  // 3.12+: offsetof(PyInterpreterState, ceval.gil) (a pointer to it); else kNone
  uint64_t gil_size;                    // sizeof(struct _gil_runtime_state)
  uint64_t gil_last_holder;             // offsetof(struct _gil_runtime_state, last_holder)
  // PyDictObject / PyDictKeysObject (a dict of general keys, such as asyncio's current tasks)
  uint64_t dict_keys;                   // offsetof(PyDictObject, ma_keys)
  uint64_t dictkeys_log2_index_bytes, dictkeys_nentries, dictkeys_indices; // PyDictKeysObject
  uint64_t dictentry_size, dictentry_value; // sizeof(PyDictKeyEntry), offsetof(PyDictKeyEntry, me_value)
  // Before 3.11 a frame is a heap PyFrameObject (the _PyInterpreterFrame fields above then name
  // its f_code, f_back and f_localsplus, frame_size its fixed part); all kNone from 3.11 on
  uint64_t tstate_frame;                // offsetof(PyThreadState, frame): the innermost frame
  uint64_t frame_lasti;                 // offsetof(PyFrameObject, f_lasti) (int, -1 before the first)
  uint64_t frame_gen;                   // offsetof(PyFrameObject, f_gen): its generator or coroutine, or NULL
  uint64_t frame_state;                 // 3.10: offsetof(PyFrameObject, f_state) (signed char); else kNone
  uint64_t frame_executing;             // 3.8/3.9: offsetof(PyFrameObject, f_executing) (char); else kNone
  uint64_t frame_valuestack;            // offsetof(PyFrameObject, f_valuestack) (PyObject **)
  uint64_t frame_stackdepth;            // 3.10: offsetof(PyFrameObject, f_stackdepth) (int); else kNone
  uint64_t frame_stacktop_ptr;          // 3.8/3.9: offsetof(PyFrameObject, f_stacktop) (PyObject **); else kNone
  uint64_t gen_frame;                   // offsetof(PyGenObject, gi_frame) (NULL once finished)
  uint64_t code_code;                   // offsetof(PyCodeObject, co_code) (a bytes object)
  uint64_t dictkeys_size;               // offsetof(PyDictKeysObject, dk_size) (Py_ssize_t)
  uint8_t lasti_unit;                   // bytes of bytecode per f_lasti step: 1 (3.8/3.9), 2 (3.10); 0 from 3.11
  uint8_t linetable_format;             // 0: 3.11+ location table; 1: co_lnotab (3.8/3.9); 2: 3.10 co_linetable
};"""

# Fields in struct order: (name, group). uint8 fields are marked in U8_FIELDS.
FIELDS = [
    ("minor", None),
    ("runtime_interpreters_head", "runtime"),
    ("interp_next", "interp"), ("interp_threads_head", "interp"), ("interp_id", "interp"),
    ("tstate_next", "tstate"), ("tstate_interp", "tstate"), ("tstate_thread_id", "tstate"),
    ("tstate_native_thread_id", "tstate"), ("tstate_cframe", "tstate"),
    ("cframe_current_frame", "cframe"), ("tstate_current_frame", "tstate"),
    ("frame_code", "frame"), ("frame_previous", "frame"), ("frame_instr", "frame"),
    ("frame_owner", "frame"), ("frame_localsplus", "frame"), ("frame_size", "frame"),
    ("frame_stacktop", "frame"), ("frame_stackpointer", "frame"),
    ("owner_thread", "owner"), ("owner_generator", "owner"), ("owner_frame_object", "owner"),
    ("owner_cstack", "owner"), ("owner_interpreter", "owner"), ("executable_tag_bits", "stackref"),
    ("code_flags", "code"), ("code_argcount", "code"), ("code_firstlineno", "code"),
    ("code_filename", "code"), ("code_name", "code"), ("code_qualname", "code"),
    ("code_linetable", "code"), ("code_firsttraceable", "code"), ("code_code_adaptive", "code"),
    ("code_size_no_bytecode", "code"),
    ("unicode_length", "unicode"), ("unicode_state", "unicode"), ("ascii_object_size", "unicode"),
    ("compact_unicode_object_size", "unicode"), ("unicode_kind_shift", "unicode"),
    ("unicode_compact_bit", "unicode"), ("unicode_ascii_bit", "unicode"),
    ("bytes_ob_size", "bytes"), ("bytes_ob_sval", "bytes"),
    ("gen_iframe", "gen"), ("gen_frame_state", "gen"), ("gen_name", "gen"), ("gen_qualname", "gen"),
    ("gen_state_suspended", "gen"), ("gen_state_yield_from", "gen"), ("gen_state_executing", "gen"),
    ("object_type", "object"), ("type_name", "type"),
    ("runtime_gil", "gil"), ("interp_gil", "gil"), ("gil_size", "gil"), ("gil_last_holder", "gil"),
    ("dict_keys", "dict"), ("dictkeys_log2_index_bytes", "dict"), ("dictkeys_nentries", "dict"),
    ("dictkeys_indices", "dict"), ("dictentry_size", "dict"), ("dictentry_value", "dict"),
    ("tstate_frame", "frameobject"), ("frame_lasti", "frameobject"), ("frame_gen", "frameobject"),
    ("frame_state", "frameobject"), ("frame_executing", "frameobject"), ("frame_valuestack", "frameobject"),
    ("frame_stackdepth", "frameobject"), ("frame_stacktop_ptr", "frameobject"), ("gen_frame", "frameobject"),
    ("code_code", "frameobject"), ("dictkeys_size", "frameobject"), ("lasti_unit", "frameobject"),
    ("linetable_format", "frameobject"),
]
U8_FIELDS = {"owner_thread", "owner_generator", "owner_frame_object", "owner_cstack",
             "owner_interpreter", "executable_tag_bits", "unicode_kind_shift",
             "unicode_compact_bit", "unicode_ascii_bit", "lasti_unit", "linetable_format"}

# Where each group's struct is defined: (C type shown in the comment, regex of its definition).
GROUP_DEFS = {
    "runtime": ("_PyRuntimeState", r"struct\s+pyruntimestate\s*\{"),
    "interp": ("PyInterpreterState", r"struct\s+_is\s*\{"),
    "tstate": ("PyThreadState", r"struct\s+_ts\s*\{"),
    "cframe": ("_PyCFrame", r"struct\s+_PyCFrame\s*\{"),
    "frame": ("_PyInterpreterFrame", r"struct\s+_PyInterpreterFrame\s*\{"),
    "owner": ("enum _frameowner", r"enum\s+_frameowner\s*\{"),
    "stackref": ("_PyStackRef tag bits", r"define\s+Py_TAG_BITS\b"),
    "code": ("PyCodeObject", r"struct\s+PyCodeObject\s+_PyCode_DEF\(1\)|^\}\s*PyCodeObject\s*;"),
    "unicode": ("PyASCIIObject / PyCompactUnicodeObject", r"\}\s*PyASCIIObject\s*;"),
    "bytes": ("PyBytesObject", r"\}\s*PyBytesObject\s*;"),
    "gen": ("PyGenObject", r"_PyGenObject_HEAD\(gi\)"),
    "object": ("PyObject", r"^(typedef\s+)?struct\s+_object\s*\{"),
    "type": ("PyTypeObject", r"^(typedef\s+)?struct\s+_typeobject\s*\{"),
    "gil": ("struct _gil_runtime_state", r"struct\s+_gil_runtime_state\s*\{"),
    "dict": ("PyDictKeysObject", r"struct\s+_dictkeysobject\s*\{"),
    "frameobject": ("PyFrameObject (before 3.11)", r"^(typedef\s+)?struct\s+_frame\s*\{"),
}

# Internal headers included when present (the set moved around between versions).
FRAME_STATES = ["FRAME_CREATED", "FRAME_SUSPENDED", "FRAME_SUSPENDED_YIELD_FROM",
                "FRAME_SUSPENDED_YIELD_FROM_LOCKED", "FRAME_EXECUTING", "FRAME_COMPLETED",
                "FRAME_CLEARED"]

INTERNAL_HEADERS = ["pycore_pystate.h", "pycore_runtime.h", "pycore_interp.h", "pycore_frame.h",
                    "pycore_interpframe_structs.h", "pycore_stackref.h", "pycore_dict.h"]


@dataclass
class HeaderSet:
    minor: int
    include_dir: Path                       # .../include/python3.X
    extra_includes: list[Path] = field(default_factory=list)
    source: str = ""                        # human description for the comment
    interpreter: list[str] | None = None    # command running this version, for --verify


def default_header_sets() -> dict[int, HeaderSet]:
    sets: dict[int, HeaderSet] = {}
    for minor, full in PYENV_VERSIONS.items():
        inc = PYENV_ROOT / "versions" / full / "include" / f"python3.{minor}"
        sets[minor] = HeaderSet(
            minor, inc, [], f"pyenv {full}: {inc}",
            [str(PYENV_ROOT / "versions" / full / "bin" / f"python3.{minor}")])
    for minor in SID_MINORS:
        root = SID_DIR / f"3.{minor}" / "root"
        inc = root / "usr" / "include" / f"python3.{minor}"
        debs = sorted(glob.glob(str(SID_DIR / f"3.{minor}" / "debs" / f"libpython3.{minor}-dev_*.deb")))
        pkg = f"libpython3.{minor}-dev"
        if debs:
            pkg = os.path.basename(debs[0]).rsplit("_", 1)[0].replace("_", " ")
        sets[minor] = HeaderSet(
            minor, inc, [root / "usr" / "include"],
            f"Debian sid {pkg}: $LOOPSPY_PYTHONS_DIR/3.{minor}/root/usr/include/python3.{minor}",
            [str(SID_DIR / f"3.{minor}" / "python")])
    return sets


class Compiler:
    def __init__(self, hs: HeaderSet, workdir: Path):
        self.hs = hs
        self.workdir = workdir
        self.cc = os.environ.get("CC", "cc")
        internal = hs.include_dir / "internal"
        self.prelude = "#define Py_BUILD_CORE 1\n#include \"Python.h\"\n#include \"frameobject.h\"\n"
        for h in INTERNAL_HEADERS:
            if (internal / h).is_file():
                self.prelude += f"#include \"internal/{h}\"\n"
        self.prelude += "#include <stdio.h>\n#include <string.h>\n#include <stdint.h>\n#include <stddef.h>\n"
        self.counter = 0

    def _flags(self) -> list[str]:
        flags = ["-std=gnu11", "-w", f"-I{self.hs.include_dir}"]
        flags += [f"-I{p}" for p in self.hs.extra_includes]
        return flags

    def compiles(self, body: str) -> bool:
        """Does a translation unit with this body (after the prelude) compile?"""
        self.counter += 1
        src = self.workdir / f"probe{self.hs.minor}_{self.counter}.c"
        src.write_text(self.prelude + body + "\n")
        r = subprocess.run([self.cc, *self._flags(), "-fsyntax-only", str(src)],
                           capture_output=True, text=True)
        return r.returncode == 0

    def has_member(self, type_name: str, member: str) -> bool:
        return self.compiles(f"size_t probe = offsetof({type_name}, {member});")

    def has_constant(self, name: str) -> bool:
        return self.compiles(f"long long probe = (long long)({name});")

    def run(self, body: str) -> str:
        src = self.workdir / f"layout{self.hs.minor}.c"
        exe = self.workdir / f"layout{self.hs.minor}"
        src.write_text(self.prelude + body + "\n")
        r = subprocess.run([self.cc, *self._flags(), str(src), "-o", str(exe)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"gen_layouts: compiling against 3.{self.hs.minor} headers failed:\n{r.stderr}")
        return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout


def pick_member(c: Compiler, type_name: str, candidates: list[str], required: bool = True) -> str | None:
    for m in candidates:
        if c.has_member(type_name, m):
            return m
    if required:
        sys.exit(f"gen_layouts: 3.{c.hs.minor}: none of {candidates} in {type_name}")
    return None


def derive(hs: HeaderSet, workdir: Path) -> tuple[dict[str, object], dict[str, str], dict[str, str]]:
    """Return (values, group comments, facts) for one header set."""
    c = Compiler(hs, workdir)
    lines: list[str] = []  # C statements printing "name value"

    def off(name: str, type_name: str, member: str) -> None:
        lines.append(f'printf("{name} %zu\\n", (size_t)offsetof({type_name}, {member}));')

    def size(name: str, type_name: str) -> None:
        lines.append(f'printf("{name} %zu\\n", sizeof({type_name}));')

    notes: dict[str, str] = {}

    off("runtime_interpreters_head", "_PyRuntimeState", "interpreters.head")
    off("interp_next", "PyInterpreterState", "next")
    off("interp_threads_head", "PyInterpreterState",
        pick_member(c, "PyInterpreterState", ["threads.head", "tstate_head"]))
    off("interp_id", "PyInterpreterState", "id")
    off("tstate_next", "PyThreadState", "next")
    off("tstate_interp", "PyThreadState", "interp")
    off("tstate_thread_id", "PyThreadState", "thread_id")
    values: dict[str, object] = {"minor": hs.minor}
    # Before 3.11 the thread state points at a heap PyFrameObject, and has no native thread id
    # (thread_id is the pthread_t: user space finds the kernel's id in glibc's struct pthread).
    frame_objects = c.has_member("PyThreadState", "frame")
    if c.has_member("PyThreadState", "native_thread_id"):
        off("tstate_native_thread_id", "PyThreadState", "native_thread_id")
    else:
        values["tstate_native_thread_id"] = NONE
    old_names = ["tstate_frame", "frame_lasti", "frame_gen", "frame_state", "frame_executing", "frame_valuestack",
                 "frame_stackdepth", "frame_stacktop_ptr", "gen_frame", "code_code", "dictkeys_size"]
    if frame_objects:
        derive_frame_objects(c, values, notes, off, size, lines)
    else:
        for name in old_names:
            values[name] = NONE
        values["lasti_unit"] = 0
        values["linetable_format"] = 0
        derive_interpreter_frames(c, values, notes, off, size, lines)

    off("unicode_length", "PyASCIIObject", "length")
    off("unicode_state", "PyASCIIObject", "state")
    size("ascii_object_size", "PyASCIIObject")
    size("compact_unicode_object_size", "PyCompactUnicodeObject")
    # Bitfield positions: set one field in a zeroed object and look at which bit lights up.
    lines.append(
        "{ const char *names[3] = {\"unicode_kind_shift\", \"unicode_compact_bit\", \"unicode_ascii_bit\"};\n"
        "  for (int which = 0; which < 3; which++) {\n"
        "    PyASCIIObject o; memset(&o, 0, sizeof o);\n"
        "    if (which == 0) o.state.kind = 1; else if (which == 1) o.state.compact = 1; else o.state.ascii = 1;\n"
        "    uint64_t bits = 0; size_t n = sizeof o.state < sizeof bits ? sizeof o.state : sizeof bits;\n"
        "    memcpy(&bits, &o.state, n);\n"
        "    int pos = -1; for (int b = 0; b < 64; b++) if (bits >> b & 1) { pos = b; break; }\n"
        "    printf(\"%s %d\\n\", names[which], pos);\n"
        "  } }")

    off("bytes_ob_size", "PyBytesObject", "ob_base.ob_size")
    off("bytes_ob_sval", "PyBytesObject", "ob_sval")

    off("gen_name", "PyGenObject", "gi_name")
    off("gen_qualname", "PyGenObject", "gi_qualname")

    if c.has_member("PyInterpreterState", "ceval.gil"):
        values["runtime_gil"] = NONE
        off("interp_gil", "PyInterpreterState", "ceval.gil")
        notes["gil"] = "per interpreter: interp->ceval.gil points to it"
    else:
        off("runtime_gil", "_PyRuntimeState", "ceval.gil")
        values["interp_gil"] = NONE
        notes["gil"] = "one for the runtime, inline: _PyRuntime.ceval.gil"
    size("gil_size", "struct _gil_runtime_state")
    off("gil_last_holder", "struct _gil_runtime_state", "last_holder")
    off("dict_keys", "PyDictObject", "ma_keys")
    if c.has_member("PyDictKeysObject", "dk_nentries"):
        if c.has_member("PyDictKeysObject", "dk_log2_index_bytes"):
            off("dictkeys_log2_index_bytes", "PyDictKeysObject", "dk_log2_index_bytes")
        else:
            values["dictkeys_log2_index_bytes"] = NONE
        off("dictkeys_nentries", "PyDictKeysObject", "dk_nentries")
        off("dictkeys_indices", "PyDictKeysObject", "dk_indices")
        size("dictentry_size", "PyDictKeyEntry")
        off("dictentry_value", "PyDictKeyEntry", "me_value")
    else:
        # 3.8-3.10 keep PyDictKeysObject in Objects/dict-common.h, which is not installed:
        # dk_refcnt, dk_size, dk_lookup, dk_usable, dk_nentries (all 8 bytes), then dk_indices;
        # an entry is me_hash, me_key, me_value. (--verify reads a live dict with these.)
        values.update(dictkeys_log2_index_bytes=NONE, dictkeys_size=8, dictkeys_nentries=32,
                      dictkeys_indices=40, dictentry_size=24, dictentry_value=16)
        notes["dict"] = "not in the installed headers: from Objects/dict-common.h"
    off("object_type", "PyObject", "ob_type")
    off("type_name", "PyTypeObject", "tp_name")

    if c.has_constant("FRAME_SUSPENDED"):
        lines.append('printf("gen_state_suspended %d\\n", (int)FRAME_SUSPENDED);')
        lines.append('printf("gen_state_executing %d\\n", (int)FRAME_EXECUTING);')
        yield_from = "FRAME_SUSPENDED_YIELD_FROM" if c.has_constant("FRAME_SUSPENDED_YIELD_FROM") else "FRAME_SUSPENDED"
        lines.append(f'printf("gen_state_yield_from %d\\n", (int){yield_from});')
    else:
        # 3.8/3.9 have no frame states: a reader derives 3.10's numbering from f_executing,
        # f_lasti and gi_frame (CREATED -2, SUSPENDED -1, EXECUTING 0).
        values.update(gen_state_suspended=-1, gen_state_yield_from=-1, gen_state_executing=0)

    # Generator frame states are not in PythonLayout, but the numbering changed (3.15 made
    # them non-negative), so record them in the comment for the reader of gi_frame_state.
    for st in FRAME_STATES:
        if c.has_constant(st):
            lines.append(f'printf("@state {st} %d\\n", (int){st});')
    lines.append('printf("@version_hex %lx\\n", (unsigned long)PY_VERSION_HEX);')
    lines.append('printf("@version %s\\n", PY_VERSION);')
    lines.append('#ifdef Py_GIL_DISABLED\nprintf("@gil_disabled 1\\n");\n#else\nprintf("@gil_disabled 0\\n");\n#endif')
    lines.append('#ifdef Py_DEBUG\nprintf("@py_debug 1\\n");\n#else\nprintf("@py_debug 0\\n");\n#endif')
    coro_frame = "cr_frame" if frame_objects else "cr_iframe"
    gen_frame = "gi_frame" if frame_objects else "gi_iframe"
    lines.append(f'printf("@coro_iframe_same %d\\n", (int)(offsetof(PyCoroObject, {coro_frame}) == offsetof(PyGenObject, {gen_frame})));')

    out = c.run("int main(void) {\n" + "\n".join(lines) + "\nreturn 0;\n}\n")
    facts: dict[str, str] = {}
    facts["states"] = {}
    for line in out.splitlines():
        k, v = line.split(" ", 1)
        if k == "@state":
            st, num = v.split()
            facts["states"][st] = int(num)
        elif k.startswith("@"):
            facts[k[1:]] = v
        else:
            values[k] = int(v)
    if facts["gil_disabled"] != "0" or facts["py_debug"] != "0":
        sys.exit(f"gen_layouts: 3.{hs.minor} headers are a free-threaded or debug build; need the default build")
    if facts["coro_iframe_same"] != "1":
        sys.exit(f"gen_layouts: 3.{hs.minor}: coroutine and generator frames are at different offsets")
    for bitname in ("unicode_kind_shift", "unicode_compact_bit", "unicode_ascii_bit"):
        if not 0 <= int(values[bitname]) < 32:
            sys.exit(f"gen_layouts: 3.{hs.minor}: could not locate bitfield {bitname}")
    missing = [n for n, _ in FIELDS if n not in values]
    if missing:
        sys.exit(f"gen_layouts: internal error, fields not derived: {missing}")

    comments = {g: locate_group(hs.include_dir, rx) for g, (_, rx) in GROUP_DEFS.items()}
    comments = {g: (f"{GROUP_DEFS[g][0]}: {path}" + (f"; {notes[g]}" if g in notes else ""))
                for g, path in comments.items()}
    return values, comments, facts



def derive_interpreter_frames(c: Compiler, values: dict, notes: dict, off, size, lines: list) -> None:
    """3.11+: _PyInterpreterFrame chains and the fields that go with them."""
    if c.has_member("PyThreadState", "cframe"):
        off("tstate_cframe", "PyThreadState", "cframe")
        off("cframe_current_frame", "_PyCFrame", "current_frame")
        values["tstate_current_frame"] = NONE
        notes["tstate"] = "current frame reached through tstate->cframe->current_frame"
    else:
        values["tstate_cframe"] = NONE
        values["cframe_current_frame"] = NONE
        off("tstate_current_frame", "PyThreadState", "current_frame")
        notes["tstate"] = "current frame is tstate->current_frame (no _PyCFrame)"

    code_member = pick_member(c, "_PyInterpreterFrame", ["f_code", "f_executable"])
    instr_member = pick_member(c, "_PyInterpreterFrame", ["prev_instr", "instr_ptr"])
    notes["frame"] = f"frame_code = {code_member}, frame_instr = {instr_member}"
    off("frame_code", "_PyInterpreterFrame", code_member)
    off("frame_previous", "_PyInterpreterFrame", "previous")
    off("frame_instr", "_PyInterpreterFrame", instr_member)
    off("frame_owner", "_PyInterpreterFrame", "owner")
    off("frame_localsplus", "_PyInterpreterFrame", "localsplus")
    size("frame_size", "_PyInterpreterFrame")
    if c.has_member("_PyInterpreterFrame", "stacktop"):
        off("frame_stacktop", "_PyInterpreterFrame", "stacktop")
        values["frame_stackpointer"] = NONE
    else:
        values["frame_stacktop"] = NONE
        off("frame_stackpointer", "_PyInterpreterFrame", "stackpointer")

    owners = {"owner_thread": "FRAME_OWNED_BY_THREAD",
              "owner_generator": "FRAME_OWNED_BY_GENERATOR",
              "owner_frame_object": "FRAME_OWNED_BY_FRAME_OBJECT",
              "owner_cstack": "FRAME_OWNED_BY_CSTACK",
              "owner_interpreter": "FRAME_OWNED_BY_INTERPRETER"}
    absent = []
    for name, const in owners.items():
        if c.has_constant(const):
            lines.append(f'printf("{name} %d\\n", (int){const});')
        else:
            values[name] = 0xFF
            absent.append(const)
    if absent:
        notes["owner"] = "absent: " + ", ".join(absent)

    # f_executable is a tagged _PyStackRef from 3.14 on; in 3.13 it is a plain PyObject*.
    tagged = code_member == "f_executable" and c.compiles(
        "void probe(_PyInterpreterFrame *f) { _PyStackRef r = f->f_executable; (void)r; }")
    if tagged:
        if c.has_constant("Py_TAG_BITS"):
            lines.append('printf("executable_tag_bits %d\\n", (int)(Py_TAG_BITS));')
        else:
            sys.exit(f"gen_layouts: 3.{c.hs.minor}: f_executable is a _PyStackRef but Py_TAG_BITS is missing")
        notes["stackref"] = "f_executable is a _PyStackRef: mask Py_TAG_BITS off before use"
    else:
        values["executable_tag_bits"] = 0
        notes["stackref"] = "frame code pointer is an untagged PyObject*"

    off("code_flags", "PyCodeObject", "co_flags")
    off("code_argcount", "PyCodeObject", "co_argcount")
    off("code_firstlineno", "PyCodeObject", "co_firstlineno")
    off("code_filename", "PyCodeObject", "co_filename")
    off("code_name", "PyCodeObject", "co_name")
    off("code_qualname", "PyCodeObject", "co_qualname")
    off("code_linetable", "PyCodeObject", "co_linetable")
    off("code_firsttraceable", "PyCodeObject", "_co_firsttraceable")
    off("code_code_adaptive", "PyCodeObject", "co_code_adaptive")
    off("code_size_no_bytecode", "PyCodeObject", "co_code_adaptive")

    off("gen_iframe", "PyGenObject", "gi_iframe")
    off("gen_frame_state", "PyGenObject", "gi_frame_state")


def derive_frame_objects(c: Compiler, values: dict, notes: dict, off, size, lines: list) -> None:
    """3.8-3.10: PyFrameObject chains. The 3.11+ frame fields name their nearest equivalents."""
    minor = c.hs.minor
    off("tstate_frame", "PyThreadState", "frame")
    for name in ("tstate_cframe", "cframe_current_frame", "tstate_current_frame", "frame_instr", "frame_owner",
                 "frame_stacktop", "frame_stackpointer", "code_qualname", "code_firsttraceable",
                 "code_code_adaptive", "gen_iframe", "gen_frame_state"):
        values[name] = NONE
    notes["tstate"] = "innermost frame is tstate->frame, a PyFrameObject; no native_thread_id"
    off("frame_code", "PyFrameObject", "f_code")
    off("frame_previous", "PyFrameObject", "f_back")
    off("frame_localsplus", "PyFrameObject", "f_localsplus")
    # The fixed part a reader needs (the block stack and locals follow).
    off("frame_size", "PyFrameObject", "f_blockstack")
    notes["frame"] = "no _PyInterpreterFrame: frame_code = PyFrameObject.f_code, frame_previous = f_back"
    # No owner byte: a frame with f_gen set is a generator's (owner_generator), else a thread's.
    values.update(owner_thread=0, owner_generator=1, owner_frame_object=0xFF, owner_cstack=0xFF,
                  owner_interpreter=0xFF, executable_tag_bits=0)
    notes["owner"] = "no owner byte: 0 = a thread's frame, 1 = a generator's (f_gen set), by loopspy's convention"
    notes["stackref"] = "frame code pointer is an untagged PyObject*"
    off("frame_lasti", "PyFrameObject", "f_lasti")
    off("frame_gen", "PyFrameObject", "f_gen")
    off("frame_valuestack", "PyFrameObject", "f_valuestack")
    if c.has_member("PyFrameObject", "f_state"):
        off("frame_state", "PyFrameObject", "f_state")
        off("frame_stackdepth", "PyFrameObject", "f_stackdepth")
        values["frame_executing"] = NONE
        values["frame_stacktop_ptr"] = NONE
    else:
        values["frame_state"] = NONE
        values["frame_stackdepth"] = NONE
        off("frame_executing", "PyFrameObject", "f_executing")
        off("frame_stacktop_ptr", "PyFrameObject", "f_stacktop")
    # 3.10 counts f_lasti in code units (2 bytes), 3.8 and 3.9 in bytes.
    values["lasti_unit"] = 2 if minor == 10 else 1
    values["linetable_format"] = 2 if c.has_member("PyCodeObject", "co_linetable") else 1
    off("gen_frame", "PyGenObject", "gi_frame")
    off("code_code", "PyCodeObject", "co_code")
    off("code_flags", "PyCodeObject", "co_flags")
    off("code_argcount", "PyCodeObject", "co_argcount")
    off("code_firstlineno", "PyCodeObject", "co_firstlineno")
    off("code_filename", "PyCodeObject", "co_filename")
    off("code_name", "PyCodeObject", "co_name")
    off("code_linetable", "PyCodeObject", "co_linetable" if values["linetable_format"] == 2 else "co_lnotab")
    size("code_size_no_bytecode", "PyCodeObject")
    notes["code"] = ("no co_qualname (names are co_name); bytecode in the co_code bytes object; "
                     "code_linetable = " + ("co_linetable (3.10 format)" if values["linetable_format"] == 2 else "co_lnotab")
                     + "; code_size_no_bytecode = sizeof(PyCodeObject)")
    notes["frameobject"] = "f_lasti counts " + ("code units" if minor == 10 else "bytes")


def locate_group(include_dir: Path, regex: str) -> str:
    rx = re.compile(regex, re.M)
    for path in sorted(include_dir.rglob("*.h")):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if rx.search(text):
            return str(path.relative_to(include_dir))
    return "(not in this version)"


def render(results: list[tuple[HeaderSet, dict, dict, dict]]) -> str:
    out = []
    out.append("// Generated by tools/gen_layouts.py from each CPython version's own headers. Do not edit;")
    out.append("// regenerate with `python3 tools/gen_layouts.py` (needs scripts/fetch-sid-pythons.sh for 3.14+).")
    out.append("// Included by symbolizer/cpython/layout.hpp inside namespace loopspy, after this struct:")
    out.append("//")
    out.extend("//   " + l for l in STRUCT_TEXT.splitlines())
    out.append("//")
    out.append("// kNone (UINT64_MAX) marks an offset the version does not have; 0xff an absent enum value.")
    out.append("// All values are for the default (GIL, non-debug) x86-64 build.")
    out.append("")
    out.append("// clang-format off")
    for hs, values, comments, facts in results:
        out.append("")
        out.append(f"// CPython {facts['version']}, PY_VERSION_HEX 0x{int(facts['version_hex'], 16):08x}")
        out.append(f"// headers: {hs.source}")
        states = ", ".join(f"{k}={v}" for k, v in facts["states"].items())
        out.append(f"// gi_frame_state values (not in the struct): {states}")
        out.append(f"inline constexpr PythonLayout kLayout3_{hs.minor} = {{")
        shown = set()
        for name, group in FIELDS:
            if group is not None and group not in shown:
                out.append(f"    // {comments[group]}")
                shown.add(group)
            v = values[name]
            if v == NONE:
                text = NONE
            elif name in U8_FIELDS or name.startswith("gen_state_"):
                text = f"0x{v:02x}" if v == 0xFF else str(v)
            else:
                text = str(v)
            out.append(f"    .{name} = {text},")
        out.append("};")
    out.append("")
    out.append("inline constexpr const PythonLayout* kPythonLayouts[] = {")
    out.append("    " + ", ".join(f"&kLayout3_{hs.minor}" for hs, *_ in results) + ",")
    out.append("};")
    out.append("// clang-format on")
    return "\n".join(out) + "\n"


# ---- --verify: read live objects of each interpreter with the derived offsets ----

# What both snippets start with: the layout, readers of raw memory, and the check counter.
VERIFY_PRELUDE = r'''
import asyncio, ctypes, json, sys, threading
L = json.loads(sys.argv[1])
NONE = 2**64 - 1
def u64(a): return ctypes.c_uint64.from_address(a).value
def i64(a): return ctypes.c_int64.from_address(a).value
def i32(a): return ctypes.c_int32.from_address(a).value
def u8(a): return ctypes.c_uint8.from_address(a).value
def i8(a): return ctypes.c_int8.from_address(a).value
def cstr(a): return ctypes.string_at(a).decode()
checks = 0
def check(cond, what):
    global checks
    checks += 1
    if not cond:
        raise SystemExit("MISMATCH: " + what)
'''

VERIFY_SNIPPET = VERIFY_PRELUDE + r'''
tagmask = ~L["executable_tag_bits"] & (2**64 - 1)

def sample(a, b=2):
    return a + b
code = sample.__code__
c = id(code)
check(i32(c + L["code_firstlineno"]) == code.co_firstlineno, "co_firstlineno")
check(i32(c + L["code_argcount"]) == code.co_argcount, "co_argcount")
check(i32(c + L["code_flags"]) == code.co_flags, "co_flags")
check(u64(c + L["code_filename"]) == id(code.co_filename), "co_filename")
check(u64(c + L["code_name"]) == id(code.co_name), "co_name")
check(u64(c + L["code_qualname"]) == id(code.co_qualname), "co_qualname")
check(u64(c + L["code_linetable"]) == id(code.co_linetable), "co_linetable")
check(u64(c + L["object_type"]) == id(type(code)), "ob_type")
check(cstr(u64(id(type(code)) + L["type_name"])) == "code", "tp_name")
check(ctypes.string_at(c + L["code_code_adaptive"], 2) == code.co_code[:2], "co_code_adaptive starts with RESUME")

b = b"hello bytes"
check(u64(id(b) + L["bytes_ob_size"]) == len(b), "bytes ob_size")
check(ctypes.string_at(id(b) + L["bytes_ob_sval"], len(b)) == b, "bytes ob_sval")

def state(s): return u64(id(s) + L["unicode_state"]) & 0xffffffff
for s, kind, ascii_ in (("plain ascii name", 1, 1), ("caf\u00e9", 1, 0), ("\u20ac uro", 2, 0), ("\U0001F600", 4, 0)):
    s = s + str(len(sys.argv))  # a fresh, non-interned compact string
    st = state(s)
    check(u64(id(s) + L["unicode_length"]) == len(s), "unicode length")
    check((st >> L["unicode_kind_shift"]) & 7 == kind, "unicode kind of %r: state=%x" % (s, st))
    check((st >> L["unicode_compact_bit"]) & 1 == 1, "unicode compact")
    check((st >> L["unicode_ascii_bit"]) & 1 == ascii_, "unicode ascii")
    off = L["ascii_object_size"] if ascii_ else L["compact_unicode_object_size"]
    data = ctypes.string_at(id(s) + off, len(s) * kind)
    check(data.decode({1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}[kind]) == s, "unicode data")

pyapi = ctypes.pythonapi
pyapi.PyThreadState_Get.restype = ctypes.c_void_p
pyapi.PyInterpreterState_Get.restype = ctypes.c_void_p
pyapi.PyInterpreterState_Main.restype = ctypes.c_void_p
runtime = ctypes.addressof(ctypes.c_char.in_dll(pyapi, "_PyRuntime"))

# Reading the current frame must not go through a Python-level helper (that would push a
# frame of its own), so it is spelled out with C-level ctypes calls at each use.
CUR = L["tstate_current_frame"]
CF, CFC = L["tstate_cframe"], L["cframe_current_frame"]
Q = ctypes.c_uint64.from_address

def frame_code(f):
    return u64(f + L["frame_code"]) & tagmask

def walk(f):
    names = []
    while f:
        owner = u8(f + L["frame_owner"])
        if owner not in (L["owner_cstack"], L["owner_interpreter"]):
            co = frame_code(f)
            if u64(co + L["object_type"]) == id(type(code)):
                names.append(cstr_unicode(u64(co + L["code_qualname"])))
        f = u64(f + L["frame_previous"])
    return names

def cstr_unicode(p):
    n = u64(p + L["unicode_length"])
    return ctypes.string_at(p + L["ascii_object_size"], n).decode()

def inner():
    ts = pyapi.PyThreadState_Get()
    interp = pyapi.PyInterpreterState_Get()
    check(u64(ts + L["tstate_interp"]) == interp, "tstate->interp")
    check(u64(runtime + L["runtime_interpreters_head"]) == pyapi.PyInterpreterState_Main(), "interpreters.head")
    check(u64(interp + L["interp_id"]) == 0, "interp->id")
    check(u64(interp + L["interp_next"]) == 0, "interp->next")
    found = False
    t = u64(interp + L["interp_threads_head"])
    while t:
        found = found or t == ts
        t = u64(t + L["tstate_next"])
    check(found, "thread list contains current tstate")
    check(u64(ts + L["tstate_thread_id"]) == threading.get_ident(), "thread_id")
    check(u64(ts + L["tstate_native_thread_id"]) & 0xffffffff == threading.get_native_id(), "native_thread_id")
    f = Q(ts + CUR).value if CUR != NONE else Q(Q(ts + CF).value + CFC).value
    check(frame_code(f) == id(inner.__code__), "current frame code")
    check(u8(f + L["frame_owner"]) == L["owner_thread"], "owner of a plain frame")
    instr = u64(f + L["frame_instr"])
    co = id(inner.__code__)
    check(co + L["code_code_adaptive"] - 2 <= instr < co + L["code_code_adaptive"] + 2 * len(inner.__code__.co_code) + 4096,
          "instruction pointer inside co_code_adaptive")
    names = walk(f)
    check(names[:2] == ["inner", "outer"], "frame chain: %r" % names)
    return True

def outer():
    return inner()
outer()

async def coro_leaf():
    await asyncio.sleep(0)
async def coro_main():
    task = asyncio.ensure_future(coro_leaf())
    await asyncio.sleep(0)
    gen = task.get_coro()
    g = id(gen)
    check(u64(g + L["gen_name"]) == id(gen.__name__), "gi_name")
    check(u64(g + L["gen_qualname"]) == id(gen.__qualname__), "gi_qualname")
    S = L["states"]
    suspended = {S[k] for k in S if k.startswith("FRAME_SUSPENDED")}
    check(i8(g + L["gen_frame_state"]) in suspended, "suspended frame state")
    check(i8(id(asyncio.current_task().get_coro()) + L["gen_frame_state"]) == S["FRAME_EXECUTING"], "executing frame state")
    fr = g + L["gen_iframe"]
    check(frame_code(fr) == id(coro_leaf.__code__), "gi_iframe code")
    check(u8(fr + L["frame_owner"]) == L["owner_generator"], "gi_iframe owner")
    me = id(asyncio.current_task().get_coro())
    ts = pyapi.PyThreadState_Get()
    f = Q(ts + CUR).value if CUR != NONE else Q(Q(ts + CF).value + CFC).value
    check(f == me + L["gen_iframe"], "running coroutine frame is embedded")
    await task
asyncio.run(coro_main())
print("ok %d checks" % checks)
'''


# Before 3.11 (PyFrameObject chains): the fields derive_frame_objects gives, on live objects.
VERIFY_FRAME_OBJECTS_SNIPPET = VERIFY_PRELUDE + r'''
pyapi = ctypes.pythonapi
pyapi.PyThreadState_Get.restype = ctypes.c_void_p
runtime = ctypes.addressof(ctypes.c_char.in_dll(pyapi, "_PyRuntime"))

def sample(a, b=2):
    return a + b
code = sample.__code__
c = id(code)
check(i32(c + L["code_firstlineno"]) == code.co_firstlineno, "co_firstlineno")
check(i32(c + L["code_flags"]) == code.co_flags, "co_flags")
check(u64(c + L["code_filename"]) == id(code.co_filename), "co_filename")
check(u64(c + L["code_name"]) == id(code.co_name), "co_name")
check(u64(c + L["code_code"]) == id(code.co_code), "co_code")
table = code.co_linetable if L["linetable_format"] == 2 else code.co_lnotab
check(u64(c + L["code_linetable"]) == id(table), "co_lnotab / co_linetable")

def inner():
    ts = pyapi.PyThreadState_Get()
    interp = u64(ts + L["tstate_interp"])
    check(u64(runtime + L["runtime_interpreters_head"]) == interp, "interpreters.head")
    check(i64(interp + L["interp_id"]) == 0, "interp->id")
    found, t = False, u64(interp + L["interp_threads_head"])
    while t:
        found = found or t == ts
        t = u64(t + L["tstate_next"])
    check(found, "thread list contains current tstate")
    check(u64(ts + L["tstate_thread_id"]) == threading.get_ident(), "thread_id")
    f = ctypes.c_uint64.from_address(ts + L["tstate_frame"]).value  # inline: a helper would be the frame
    check(f == id(sys._getframe()), "tstate->frame is the current frame")
    check(u64(f + L["frame_code"]) == id(inner.__code__), "f_code")
    check(u64(f + L["frame_previous"]) == id(sys._getframe(1)), "f_back")
    check(u64(f + L["frame_gen"]) == 0, "f_gen of a plain frame")
    return True
inner()

def lasti_of_caller():
    f = sys._getframe(1)
    return i32(id(f) + L["frame_lasti"]), f.f_lasti
raw, seen = lasti_of_caller()
# f.f_lasti is in bytes in every version; 3.10 stores code units.
check(raw * L["lasti_unit"] == seen, "f_lasti and its unit: %d * %d != %d" % (raw, L["lasti_unit"], seen))

d = {"k%d" % i: i for i in range(20)}
keys = u64(id(d) + L["dict_keys"])
size = i64(keys + L["dictkeys_size"])
check(size >= 32 and size & (size - 1) == 0, "dk_size")
check(i64(keys + L["dictkeys_nentries"]) == 20, "dk_nentries")
slot = 1 if size <= 0xff else 2 if size <= 0xffff else 4
entries = keys + L["dictkeys_indices"] + size * slot
check(u64(entries + 8) == id("k0") or ctypes.cast(u64(entries + 8), ctypes.py_object).value == "k0", "first entry's key")
check(u64(entries + L["dictentry_value"]) == id(0), "first entry's value")
check(u64(entries + L["dictentry_size"] + L["dictentry_value"]) == id(1), "second entry's value")

async def coro_leaf():
    await asyncio.sleep(0)
async def coro_main():
    task = asyncio.ensure_future(coro_leaf())
    await asyncio.sleep(0)
    gen = task.get_coro()
    g = id(gen)
    check(u64(g + L["gen_name"]) == id(gen.__name__), "gi_name")
    check(u64(g + L["gen_qualname"]) == id(gen.__qualname__), "gi_qualname")
    fr = u64(g + L["gen_frame"])
    check(fr == id(gen.cr_frame), "gi_frame")
    check(u64(fr + L["frame_gen"]) == g, "f_gen of a coroutine's frame")
    if L["frame_state"] != NONE:
        check(i8(fr + L["frame_state"]) == L["gen_state_suspended"], "f_state suspended")
    else:
        check(i8(fr + L["frame_executing"]) == 0, "f_executing of a suspended frame")
    # The awaited object on top of the suspended coroutine's value stack: sleep(0)'s generator.
    if L["frame_stackdepth"] != NONE:
        top = u64(u64(fr + L["frame_valuestack"]) + 8 * (i32(fr + L["frame_stackdepth"]) - 1))
    else:
        top = u64(u64(fr + L["frame_stacktop_ptr"]) - 8)
    check(top == id(gen.cr_await), "top of the value stack is cr_await")
    me = asyncio.current_task().get_coro()
    check(u64(id(sys._getframe()) + L["frame_gen"]) == id(me), "running coroutine's frame names it")
    await task
asyncio.run(coro_main())
print("ok %d checks" % checks)
'''


def verify(hs: HeaderSet, values: dict, facts: dict) -> str:
    if not hs.interpreter or not shutil.which(hs.interpreter[0]) and not os.path.exists(hs.interpreter[0]):
        return f"3.{hs.minor}: no interpreter to verify against"
    layout = {k: (2**64 - 1 if v == NONE else v) for k, v in values.items()}
    layout["states"] = facts["states"]
    snippet = VERIFY_FRAME_OBJECTS_SNIPPET if values["tstate_frame"] != NONE else VERIFY_SNIPPET
    r = subprocess.run([*hs.interpreter, "-c", snippet, json.dumps(layout)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"gen_layouts: verification against {hs.interpreter[0]} failed:\n{r.stdout}{r.stderr}")
    return f"3.{hs.minor}: {r.stdout.strip()} ({hs.interpreter[0]})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--headers", action="append", default=[], metavar="3.X=DIR",
                    help="header directory (the one holding Python.h) for a version")
    ap.add_argument("--output", type=Path, default=OUTPUT)
    ap.add_argument("--check", action="store_true", help="compare with the existing file instead of writing")
    ap.add_argument("--verify", action="store_true", help="check the offsets against live interpreters")
    args = ap.parse_args()

    sets = default_header_sets()
    for spec in args.headers:
        ver, _, d = spec.partition("=")
        minor = int(ver.split(".")[1])
        inc = Path(d)
        sets[minor] = HeaderSet(minor, inc, [inc.parent], f"{inc}", None)
    for minor in ALL_MINORS:
        if not (sets[minor].include_dir / "Python.h").is_file():
            hint = " (run scripts/fetch-sid-pythons.sh)" if minor in SID_MINORS else ""
            sys.exit(f"gen_layouts: no headers for 3.{minor} at {sets[minor].include_dir}{hint}")

    results = []
    with tempfile.TemporaryDirectory(prefix="gen_layouts.") as tmp:
        for minor in ALL_MINORS:
            values, comments, facts = derive(sets[minor], Path(tmp))
            results.append((sets[minor], values, comments, facts))

    text = render(results)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; run tools/gen_layouts.py", file=sys.stderr)
            return 1
    else:
        args.output.write_text(text)
        print(f"wrote {args.output}")
    if args.verify:
        for hs, values, _, facts in results:
            print(verify(hs, values, facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
