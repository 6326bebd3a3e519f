#!/usr/bin/env python3
"""Dump CPython location tables (co_linetable) with the interpreter's own answers.

Usage:  INTERP tools/gen_linetable_fixtures.py OUT.json

Run it under each supported interpreter (3.8 and newer), e.g.

    /root/.pyenv/versions/3.12.1/bin/python3 tools/gen_linetable_fixtures.py tests/data/linetables/3.12.json

For every code object of a varied, generated corpus (plus a few real stdlib modules), recursing
into nested code objects, it writes:

    name, qualname, firstlineno, linetable (hex), code_len (bytes of co_code),
    lines:   the co_lines() triples [start, end, line] (line None -> -1)
    offsets: the line of every code unit, i.e. for byte offset 2*i the start line that
             co_positions() reports (None -> -1); this is what PyCode_Addr2Line and thus the
             frame's f_lineno give for an instruction at that offset.

Before 3.11 the table is co_lnotab (3.8, 3.9) or the 3.10 co_linetable, named by "format"
("lnotab", "pairs310"; "locations" from 3.11), and the answers come from the interpreter's own
PyCode_Addr2Line for every even byte offset ("offsets", index i = offset 2*i; 3.8 and 3.9 count
f_lasti in bytes, 3.10 in code units, but both ask PyCode_Addr2Line in bytes), and from
co_lines() (3.10) or dis.findlinestarts() (3.8, 3.9: "starts").

The C++ decoder in symbolizer/frames/linetable.cpp is checked against this in tests/unit/test_linetable.cpp.
The script only uses documented code-object APIs, so it runs unchanged on newer versions.
"""

import collections
import importlib
import json
import sys
import types

if sys.version_info < (3, 8):
    sys.exit("needs Python 3.8+")
import ctypes
import dis

# ---------------------------------------------------------------------------------------------
# The generated corpus. Each piece is a separate compile() unit so that line numbers stay
# readable; several are deliberately placed at large line numbers.

COL_PAD_200 = " " * 200
COL_PAD_5000 = " " * 5000


def long_function(name: str, body_lines: int) -> str:
    """A function whose body has many statements with a mix of line steps."""
    out = [f"def {name}(a, b=1, *args, **kw):"]
    out.append("    total = 0")
    for i in range(body_lines):
        r = i % 9
        if r == 0:
            out.append(f"    total += a * {i}")
        elif r == 1:
            out.append(f"    if total > {i}:")
            out.append(f"        total -= b")
        elif r == 2:
            out.append("")  # a blank line, so the line delta is 2
            out.append(f"    x{i} = [k for k in range({i}) if k % 3]")
        elif r == 3:
            out.append(f"    for j in range(2):")
            out.append(f"        total += j")
        elif r == 4:
            out.append(f"    y{i} = (total +")
            out.append(f"            a -")
            out.append(f"            b)")
        elif r == 5:
            out.append(f"    s{i} = 'x' * {i}; t{i} = s{i}.upper()")
        elif r == 6:
            out.append("    # a comment line")
            out.append(f"    total = total if total else {i}")
        elif r == 7:
            out.append(f"    while total > {i * 1000}:")
            out.append(f"        total //= 2")
        else:
            out.append(f"    kw.setdefault('k{i}', lambda q: q + {i})")
    out.append("    return total")
    return "\n".join(out) + "\n"


def _basic_for_version():
    src = '''
import os, sys

CONST = 1

def empty():
    pass

def implicit_return(x):
    x = x + 1

def with_docstring():
    """doc"""
    return 1

@staticmethod
@property
def decorated(a,
              b):
    return (a +
            b)

def multiline_call(f, a, b):
    return f(
        a,
        b,
    )

def backwards(f, a, b):
    # arguments evaluated on later lines, the call reported on the first line
    return f(a,
             b)(
                 a)

class Klass(object):
    attr = [i * 2 for i in range(10)]

    def method(self, x):
        return super().method(x)

    @classmethod
    def cm(cls):
        return cls

    async def amethod(self):
        return await self.other()

def gen(n):
    for i in range(n):
        yield i
    yield from range(n)

async def agen(n):
    for i in range(n):
        yield i

async def coro(q):
    async with q as r:
        await r
    async for x in agen(3):
        await x
    return [x async for x in agen(2)]

def comprehensions(xs):
    a = [x for x in xs]
    b = {x: y for x, y in zip(xs, xs)}
    c = {x for x in xs if x}
    d = (x for x in xs)
    e = [[y for y in range(x)] for x in xs]
    return a, b, c, d, e

def lambdas():
    f = lambda x: (lambda y: x + y)
    g = lambda: None
    return f, g

def closures():
    v = 1
    def inner():
        nonlocal v
        v += 1
        return v
    return inner

def exceptions(f):
    try:
        f()
    except ValueError as e:
        print(e)
    except (TypeError, KeyError):
        pass
    else:
        return 1
    finally:
        print("done")
    try:
        f()
    except* OSError as eg:
        pass
    return 2

def withs(a, b):
    with a as x, b as y:
        return x + y

def matches(cmd):
    match cmd:
        case ["go", direction]:
            return direction
        case {"k": v, **rest}:
            return v
        case Klass(attr=[1, *_]) | None:
            return 0
        case int(n) if n > 10:
            return n
        case _:
            return None

def conditional(a, b):
    x = (a
         if b else
         -a)
    y = a and b or not a
    assert x, (
        "message")
    del y
    return x

def fstrings(a):
    return (f"{a!r:>{10}} {a + 1} "
            f"{a}")

def loop_else(xs):
    for x in xs:
        if x:
            break
        continue
    else:
        return None
    while True:
        try:
            return x
        finally:
            xs.pop()

def global_stuff():
    global CONST
    CONST += 1
    import json as j
    from os import path as p
    return j, p

def starred(*a, **k):
    x, *y = a
    return print(*a, *y, **k, sep="")

def slices(a):
    a[1:2] = a[::-1]
    a[0] += 1
    return a[1:-1:2]
'''
    if sys.version_info >= (3, 12):
        src += '''
def fstrings_multiline(a):
    return f"{a!r:>{10}} {a + 1} {
        a}"

type Alias[T] = list[T]

def generic[T: int, *Ts, **P](x: T) -> T:
    return x

class GenericClass[T]:
    def m(self) -> T:
        return self
'''
    if sys.version_info < (3, 11):
        src = src.replace("except* OSError", "except OSError")
    if sys.version_info < (3, 10):
        start = src.index("def matches(cmd):")
        src = src[:start] + src[src.index("def conditional(a, b):"):]
    return src


PIECES = [("basic", 1, _basic_for_version())]

# Long bodies (> 64 lines and > 64 entries), at an ordinary line number.
PIECES.append(("long", 1, long_function("long_body", 120) + long_function("medium_body", 70)))

# Columns beyond what the short (< 80) and one-line (< 128) forms can hold.
PIECES.append(("columns", 1, f'''
def wide(a, b):
    x = {COL_PAD_200}a + b
    y = (a, {COL_PAD_200}b, {COL_PAD_200}a)
    z = {COL_PAD_5000}a * b
    return x, y, z
def wide_lambda():
    return ({COL_PAD_200}lambda q: q)
'''))

# Big line numbers: firstlineno > 2**14, deltas > 2**14 forward and backward, end lines far away.
BIG_GAP = "\n" * 20000
PIECES.append(("big_lines", 1, BIG_GAP + f'''
def far_away(f, a, b):
    x = a
{BIG_GAP}
    y = b
    z = f(a,{BIG_GAP}b)
    w = f(
{BIG_GAP}
    )
    return x + y + z + w
''' + "\n" * 70000 + '''
def farther(a):
    return a
'''))

# Nested functions whose bodies sit far below their def line (large first delta), and a class
# body containing such things.
PIECES.append(("nested_far", 1, '''
def outer():
    def inner(
''' + "\n" * 300 + '''
    ):
        return 1
    class C:
''' + "\n" * 5000 + '''
        def m(self):
            return inner()
    return C
'''))

# Module-level code with many statements and no-location cleanup.
PIECES.append(("module", 5, "\n".join(
    [f"v{i} = {i}" if i % 3 else f"try:\n    v{i} = int('{i}')\nexcept ValueError:\n    pass"
     for i in range(100)]) + "\n"))


# Real stdlib modules: the whole module code tree, as compiled by this interpreter.
STDLIB_MODULES = ["json.decoder", "asyncio.base_events", "asyncio.tasks"]

# ---------------------------------------------------------------------------------------------


def walk(code):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from walk(c)


def entry_kinds(table: bytes):
    """Count first bytes by location-entry code (bits 3..6), for the coverage summary."""
    counts = collections.Counter()
    for byte in table:
        if byte & 0x80:
            counts[(byte >> 3) & 15] += 1
    return counts


_addr2line = ctypes.pythonapi.PyCode_Addr2Line
_addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
_addr2line.restype = ctypes.c_int


def describe_before_311(code, source_name):
    code_len = len(code.co_code)
    offsets = [_addr2line(code, 2 * i) for i in range(code_len // 2)]
    out = {
        "source": source_name,
        "name": code.co_name,
        "qualname": code.co_name,
        "firstlineno": code.co_firstlineno,
        "code_len": code_len,
        "offsets": offsets,
    }
    if sys.version_info >= (3, 10):
        out["format"] = "pairs310"
        out["linetable"] = code.co_linetable.hex()
        out["lines"] = [[s, e, -1 if ln is None else ln] for s, e, ln in code.co_lines()]
    else:
        out["format"] = "lnotab"
        out["linetable"] = code.co_lnotab.hex()
        out["starts"] = [[o, ln] for o, ln in dis.findlinestarts(code)]
    return out


def describe(code, source_name):
    if sys.version_info < (3, 11):
        return describe_before_311(code, source_name)
    code_len = len(code.co_code)
    positions = list(code.co_positions())
    if len(positions) != code_len // 2:
        raise SystemExit(f"{code.co_qualname}: co_positions has {len(positions)} entries for "
                         f"{code_len // 2} code units")
    offsets = [-1 if p[0] is None else p[0] for p in positions]
    lines = [[s, e, -1 if ln is None else ln] for s, e, ln in code.co_lines()]
    return {
        "source": source_name,
        "name": code.co_name,
        "qualname": code.co_qualname,
        "firstlineno": code.co_firstlineno,
        "code_len": code_len,
        "format": "locations",
        "linetable": code.co_linetable.hex(),
        "lines": lines,
        "offsets": offsets,
    }


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out_path = sys.argv[1]

    roots = []
    for name, first, src in PIECES:
        # A leading offset so that firstlineno is not always 1.
        src = "\n" * (first - 1) + src
        roots.append((name, compile(src, f"<corpus:{name}>", "exec")))
    for modname in STDLIB_MODULES:
        mod = importlib.import_module(modname)
        roots.append((modname, mod.__loader__.get_code(modname)))

    codes = []
    kinds = collections.Counter()
    for source_name, root in roots:
        for code in walk(root):
            codes.append(describe(code, source_name))
            if sys.version_info >= (3, 11):
                kinds += entry_kinds(code.co_linetable)

    header = {
        "python": "%d.%d.%d" % sys.version_info[:3],
        "hexversion": sys.hexversion,
        "generator": "tools/gen_linetable_fixtures.py",
    }
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("{\n")
        for k, v in header.items():
            f.write(f"{json.dumps(k)}: {json.dumps(v)},\n")
        f.write('"codes": [\n')
        f.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in codes))
        f.write("\n]\n}\n")

    names = {0: "short", 10: "one-line", 13: "no-column", 14: "long", 15: "none"}
    summary = collections.Counter()
    for k, n in kinds.items():
        summary[names.get(k, "short" if k < 10 else "one-line")] += n
    print(f"{out_path}: {len(codes)} code objects; entries by form: "
          + ", ".join(f"{k}={summary[k]}" for k in ["short", "one-line", "no-column", "long", "none"]),
          file=sys.stderr)


if __name__ == "__main__":
    main()
