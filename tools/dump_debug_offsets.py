#!/usr/bin/env python3
"""Write the first bytes of this interpreter's _PyRuntime to a file.

Run it under the interpreter whose table you want, e.g.
    ~/.cache/loopspy/pythons/3.14/python tools/dump_debug_offsets.py tests/data/debug_offsets/3.14.bin

From 3.13 on those bytes are _Py_DebugOffsets; tests/unit/test_debug_offsets.cpp parses the
files and compares them with the layouts derived from the headers.
"""

import ctypes
import sys

# Must stay equal to loopspy::debug_offsets_read_size() (symbolizer/cpython/debug_offsets.cpp).
READ_SIZE = 888


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(f"usage: {sys.argv[0]} OUTPUT [SIZE]", file=sys.stderr)
        return 2
    size = int(sys.argv[2]) if len(sys.argv) == 3 else READ_SIZE
    # pythonapi resolves symbols in the running program and the libraries it loaded, so this
    # finds _PyRuntime both in a static interpreter binary and in libpython3.X.so.
    runtime = ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime")
    data = ctypes.string_at(ctypes.addressof(runtime), size)
    if not data.startswith(b"xdebugpy"):
        print(f"warning: _PyRuntime of {sys.version.split()[0]} has no debug-offsets cookie",
              file=sys.stderr)
    with open(sys.argv[1], "wb") as f:
        f.write(data)
    print(f"{sys.version.split()[0]}: wrote {size} bytes to {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
