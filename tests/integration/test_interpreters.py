"""The Debian-sid interpreters are fetched fresh on every machine, so a new upload can change
them under us. Their layout tables (_Py_DebugOffsets) must still be the ones the committed
fixtures and generated layouts were made from; if an upload changes one, this fails saying so."""
import pathlib
import subprocess

import pytest

from conftest import ROOT, interpreter

DUMP = ROOT / "tools" / "dump_debug_offsets.py"
# sizeof(_Py_DebugOffsets) per version (symbolizer/cpython/debug_offsets.cpp checks the same figures
# against the headers); the bytes after it are the runtime's own state.
TABLE_SIZE = {"3.14": 760, "3.15": 888}


def dump(python, out):
    subprocess.run([python, DUMP, out], check=True, capture_output=True, timeout=60)
    return pathlib.Path(out).read_bytes()


@pytest.mark.parametrize("py", ["sid-3.14", "sid-3.15"])
def test_the_sid_interpreters_layout_tables_are_the_committed_ones(py, tmp_path):
    python = interpreter(py)
    minor = py.split("-")[1]
    fixture = (ROOT / "tests" / "data" / "debug_offsets" / f"{minor}.bin").read_bytes()
    a, b = dump(python, tmp_path / "a.bin"), dump(python, tmp_path / "b.bin")
    assert a[:8] == b"xdebugpy" and len(a) == len(fixture)
    # Bytes 8-16 are the version, which an upload may change; the table must not, and it is the
    # same in every process of a build.
    table = range(16, TABLE_SIZE[minor])
    assert all(a[i] == b[i] for i in table)
    changed = [i for i in table if a[i] != fixture[i]]
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert not changed, (
        f"Debian sid's python{minor} (now {version}) has a different _Py_DebugOffsets table than "
        f"tests/data/debug_offsets/{minor}.bin (first changed byte {changed[0]}): regenerate the fixture "
        f"(tools/dump_debug_offsets.py) and the layouts (tools/gen_layouts.py), and check them")
