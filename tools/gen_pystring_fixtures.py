#!/usr/bin/env python3
"""Dump the in-memory bytes of real str objects, for the tests of symbolizer/cpython/pystring.cpp.

Usage:  INTERP tools/gen_pystring_fixtures.py OUT.json

e.g.    /root/.pyenv/versions/3.12.1/bin/python3 tools/gen_pystring_fixtures.py tests/data/pystrings/3.12.json

For each sample string it records the object's bytes as ctypes.string_at(id(s), n) returns them
(n = sys.getsizeof(s) for exact str objects; the type's __basicsize__ for str subclasses, whose
characters live in a separate buffer) together with the UTF-8 the decoder must produce. Lone
surrogates have no UTF-8 form; the decoder writes U+FFFD for them, and so does `expected_utf8`.

It also records layout facts derived only through documented APIs (sizes and the positions of
the length and hash fields), which the tests compare with the layouts compiled into loopspy.
Only CPython on a little-endian 64-bit machine is supported.
"""

import ctypes
import json
import struct
import sys
import sysconfig

if sys.version_info < (3, 8):
    sys.exit("needs Python 3.8+")


class StrSubclass(str):
    """Instances of str subclasses are not compact: their characters are in a separate block."""


def sample_strings():
    # Built at run time (not constants of this module) where it matters that the object is
    # fresh and not interned; interned constants are included too, as names are interned.
    return [
        ("ascii", "abc"),
        ("ascii_interned_name", sys.intern("run_until_complete")),
        ("empty", ""),
        ("latin1", "caf" + chr(0xE9)),
        ("latin1_ff", "".join([chr(0xFF), "y"])),
        ("ucs2", "\u03a9\u03bc\u03ad\u03b3\u03b1"),
        ("ucs4", "\U0001F600x"),
        ("ucs4_max", "a\U0010FFFF"),
        ("special_chars", ";<&\"'"),
        ("module_name", "<module>"),
        ("embedded_nul", "a\x00b"),
        ("lone_surrogate", "\ud800x"),
        ("long_ascii", "".join(chr(ord("a") + i % 26) for i in range(3000))),
        ("long_ucs2", "\u0436" * 1500),
        ("long_ucs4", "\U0001F40D" * 1100),
        ("non_compact_ascii", StrSubclass("subclass")),
        ("non_compact_ucs2", StrSubclass("\u03a9sub")),
    ]


def object_bytes(s):
    n = type(s).__basicsize__ if type(s) is not str else sys.getsizeof(s)
    return ctypes.string_at(id(s), n)


def expected_utf8(s):
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in s).encode("utf-8")


def find_u64(blob, value, start=0):
    needle = struct.pack("<q", value)
    return blob.find(needle, start)


def derived_layout():
    # A fresh ASCII string with an unusual length: its length field is the 8-byte word after the
    # object header that holds that value; the hash follows it, and the state word the hash.
    s = "".join(["q"] * 12345)
    h = hash(s)  # computed lazily, so before reading the object
    head = ctypes.string_at(id(s), 64)
    length_offset = find_u64(head, len(s))
    hash_offset = find_u64(head, h)
    return {
        "length_offset": length_offset,
        "hash_offset": hash_offset,
        "state_offset": hash_offset + 8,
        # sys.getsizeof of a fresh compact string (no cached UTF-8 copy) is the struct size plus
        # (len + 1) * kind.
        "ascii_object_size": sys.getsizeof("".join(["a", "b"])) - 3,
        "compact_object_size": sys.getsizeof("".join([chr(0xE9), "b"])) - 3,
        "str_basicsize": str.__basicsize__,
    }


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    if sys.byteorder != "little" or struct.calcsize("P") != 8:
        raise SystemExit("only little-endian 64-bit builds are supported")
    samples = []
    for label, s in sample_strings():
        blob = object_bytes(s)  # read first, before anything could cache a UTF-8 copy
        samples.append({
            "label": label,
            "repr": ascii(s)[:80],
            "length": len(s),
            "compact": type(s) is str,
            "max_char": max(map(ord, s)) if s else 0,
            "expected_utf8": expected_utf8(s).hex(),
            "object": blob.hex(),
        })
    out = {
        "python": "%d.%d.%d" % sys.version_info[:3],
        "hexversion": sys.hexversion,
        "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "generator": "tools/gen_pystring_fixtures.py",
        "derived_layout": derived_layout(),
        "strings": samples,
    }
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"{sys.argv[1]}: {len(samples)} strings, layout {out['derived_layout']}", file=sys.stderr)


if __name__ == "__main__":
    main()
