"""Recordings kept in the tree replay into exactly the outputs they gave when they were made:
restructuring loopspy must not change a byte of what a user gets from a recording they already
have. The recordings (tests/regression/recordings/) are real: the demo service, a task tree on
sid 3.14, a stalling loop, hostile function names, two loops in two threads.

After a deliberate change of an output, regenerate the expected files with
    LOOPSPY_REGRESSION_UPDATE=1 python3 -m pytest tests/integration/test_regression.py
and say why in the commit."""
import os
import pathlib

import pytest

from conftest import ROOT, run_loopspy

HERE = ROOT / "tests" / "regression"
RECORDINGS = sorted(p.stem for p in (HERE / "recordings").glob("*.lspy"))
UPDATE = os.environ.get("LOOPSPY_REGRESSION_UPDATE") == "1"

# view name -> (replay arguments, where the output goes: a file flag, or None for stdout)
VIEWS = {
    "summary.txt": ([], None),
    "slow-callbacks.txt": (["--slow-callbacks", "--threshold", "50"], None),
    "slow-by-time.txt": (["--slow-callbacks", "--threshold", "20", "--sort", "time"], None),
    "cpu.collapsed": (["--mode", "cpu"], "--collapsed"),
    "busy.collapsed": (["--mode", "busy"], "--collapsed"),
    "wall.collapsed": (["--mode", "wall"], "--collapsed"),
    "wall.svg": (["--mode", "wall"], "--flamegraph"),
    "report.json": (["--threshold", "50", "--tasks"], "--report"),
    "window.json": (["--from", "0.5", "--to", "1.5", "--threshold", "20"], "--report"),
    "async.collapsed": (["--async", "--mode", "cpu"], "--collapsed"),
    "async.svg": (["--async"], "--flamegraph"),
    "tasks.txt": (["--tasks"], None),
    "tasks.collapsed": ([], "--tasks-collapsed"),
    "tasks.svg": ([], "--tasks-flamegraph"),
}


def test_the_regression_recordings_are_there():
    assert len(RECORDINGS) >= 5, RECORDINGS


@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("recording", RECORDINGS)
def test_a_kept_recording_replays_byte_identically(recording, view, tmp_path):
    args, output_flag = VIEWS[view]
    rec = HERE / "recordings" / f"{recording}.lspy"
    out = tmp_path / view
    flags = [output_flag, out] if output_flag else []
    proc = run_loopspy("replay", rec, *args, *flags)
    got = out.read_bytes() if output_flag else proc.stdout.encode()
    expected = HERE / "expected" / recording / view
    if UPDATE:
        expected.parent.mkdir(parents=True, exist_ok=True)
        expected.write_bytes(got)
    assert expected.exists(), f"no expected output {expected}: run with LOOPSPY_REGRESSION_UPDATE=1"
    assert got == expected.read_bytes(), f"{recording} {view} differs from {expected}"
