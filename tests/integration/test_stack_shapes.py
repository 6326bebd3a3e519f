"""Deep stacks, many threads and hostile names: the profile stays complete and the outputs safe."""
import re
import xml.etree.ElementTree as ET

import pytest

from conftest import (WORKLOADS, fully_symbolized_percent, frame_name, interpreter, parse_collapsed,
                      run_loopspy, summary_line)

SHAPES = WORKLOADS / "shapes.py"
VERSIONS = ["pyenv-3.8", "pyenv-3.9", "pyenv-3.10", "pyenv-3.12", "sid-3.14"]


def record_launch(python, tmp_path, shape, seconds=3, *extra):
    collapsed, svg = tmp_path / "out.txt", tmp_path / "out.svg"
    proc = run_loopspy("record", "--collapsed", collapsed, "--flamegraph", svg, *extra, "--",
                       python, SHAPES, shape, "--seconds", seconds)
    return proc, parse_collapsed(collapsed), svg


@pytest.mark.parametrize("py", VERSIONS)
def test_a_stack_200_frames_deep_is_complete(py, tmp_path):
    proc, stacks, _ = record_launch(interpreter(py), tmp_path, "deep")
    leaf_stacks = [(f, w) for f, w in stacks if any(frame_name(x) == "deep_leaf" for x in f)]
    assert leaf_stacks, "no sample reached deep_leaf"
    deepest = max(leaf_stacks, key=lambda s: len(s[0]))[0]
    # thread root + <module> + run_deep + 196 x recurse + deep_leaf + spin
    assert sum(frame_name(f) == "recurse" for f in deepest) == 196
    assert frame_name(deepest[1]) == "<module>"
    assert not any(f.startswith("<truncated>") for f, _ in leaf_stacks for f in f)
    leaf_weight = sum(w for _, w in leaf_stacks)
    assert leaf_weight / sum(w for _, w in stacks) > 0.8
    assert fully_symbolized_percent(proc.stderr) >= 99.0


def test_a_stack_deeper_than_the_kernel_walks_is_marked_truncated(tmp_path):
    # 256 frames are walked; recurse 400 deep and the outermost frames must be marked missing.
    python = interpreter("pyenv-3.12")
    script = tmp_path / "deeper.py"
    script.write_text(SHAPES.read_text().replace("recurse(196, args.seconds)", "recurse(400, args.seconds)"))
    collapsed = tmp_path / "out.txt"
    run_loopspy("record", "--mode", "cpu", "--collapsed", collapsed, "--", python, script, "deep", "--seconds", 2)
    stacks = parse_collapsed(collapsed)
    # The recursion's stacks (a sample of the interpreter's start whose code object was freed and
    # its address taken by deep_leaf's before it was named can read deep_leaf too, and is no
    # deeper than the imports were).
    leaf = [f for f, _ in stacks if any(frame_name(x) == "deep_leaf" for x in f) and any(frame_name(x) == "recurse" for x in f)]
    assert leaf and all(f[1] == "<truncated>" for f in leaf)
    assert all(len(f) == 2 + 256 for f in leaf)  # thread, <truncated>, 256 innermost frames


@pytest.mark.parametrize("py", VERSIONS)
def test_fifty_threads_are_each_seen(py, tmp_path):
    proc, stacks, _ = record_launch(interpreter(py), tmp_path, "threads", 4)
    worker_threads = {f[0] for f, _ in stacks if any(frame_name(x) == "thread_worker" for x in f)}
    assert len(worker_threads) == 50, sorted(worker_threads)
    assert all(re.fullmatch(r"thread .+ \(\d+\)", t) for t in worker_threads)
    assert re.search(r"(5[01]) Python threads seen", summary_line(proc.stderr))
    assert fully_symbolized_percent(proc.stderr) >= 99.0


@pytest.mark.parametrize("py", VERSIONS)
def test_hostile_names_are_escaped_in_every_output(py, tmp_path):
    proc, stacks, svg = record_launch(interpreter(py), tmp_path, "names")
    weird = [f for frames, _ in stacks for f in frames if "weird" in f]
    assert weird, "the renamed function was not sampled"
    # collapsed: ';' is replaced, non-ASCII kept, the file name shown
    assert 'weird,name<script>alert(1)</script>&"quoted"\'s-Ωμέγα-😀 (we,ird<&>"\'ü.py:2)' in weird
    text = svg.read_text(encoding="utf-8")
    ET.fromstring(text.encode("utf-8"))  # well-formed XML
    assert "<script>alert(1)" not in text
    assert text.count("<script") == 1
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "Ωμέγα-😀" in text
