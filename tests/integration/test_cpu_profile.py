"""A user profiles a CPU-bound asyncio program and checks that the flame graph tells the truth:
each function's share of the loop thread's CPU time (`--mode cpu`) matches what the program
measured itself with time.thread_time()."""
import json

import pytest

from conftest import (ALL_PYTHONS, WORKLOADS, fully_symbolized_percent, frame_name, interpreter, summary_line,
                      parse_collapsed, run_loopspy, wait_for_file)

FUNCS = ("burn_alpha", "burn_beta", "burn_gamma")


def test_under_cpu_contention_the_shares_stay_right(tmp_path, spawn):
    """Two CPU hogs share the machine, so the target is preempted often: the CPU shares stay right."""
    python = interpreter("pyenv-3.12")
    hogs = [spawn([python, "-c", "while True: pass"]) for _ in range(2)]
    truth_file, ready = tmp_path / "truth.json", tmp_path / "ready"
    workload = spawn([python, WORKLOADS / "cpu_shares.py", "--seconds", "6", "--truth", truth_file, "--ready", ready])
    wait_for_file(ready, proc=workload)
    cpu = tmp_path / "cpu.txt"
    run_loopspy("record", "-p", workload.pid, "-d", 4, "--mode", "cpu", "--collapsed", cpu)
    assert workload.wait(timeout=30) == 0
    for h in hogs:
        h.kill()
    truth = json.loads(truth_file.read_text())
    check_against_truth(parse_collapsed(cpu), truth, "share_after_ready")


def test_a_warm_program_rarely_wakes_the_recorder(tmp_path, spawn):
    """Attached to a program that runs the same code over and over, loopspy is woken early only
    for the few stack shapes it has not named yet; the rest waits for its 50 ms drain. A recorder
    woken for every sample would take the CPU from the target once per sample."""
    python = interpreter("sid-3.15")
    truth_file, ready = tmp_path / "truth.json", tmp_path / "ready"
    workload = spawn([python, WORKLOADS / "cpu_shares.py", "--seconds", "6", "--truth", truth_file, "--ready", ready])
    wait_for_file(ready, proc=workload)
    proc = run_loopspy("record", "-p", workload.pid, "-d", 3, "-r", 1000, "-o", tmp_path / "r.lspy")
    line = summary_line(proc.stderr)
    samples = int(line.split("loopspy: ")[1].split(" samples")[0])
    wakeups = int(line.rsplit(", ", 1)[1].split(" wake-ups")[0])
    assert samples > 2000, line
    # 60 drains in 3 s, plus one early wake-up per new shape (a few dozen here).
    assert wakeups < 300, line


def shares_by_function(stacks, thread_prefix="thread "):
    """Share of the main thread's time spent in each FUNCS frame (anywhere on the stack)."""
    # The loop runs in the main thread: the thread root with the most weight.
    per_thread = {}
    for frames, w in stacks:
        per_thread[frames[0]] = per_thread.get(frames[0], 0) + w
    main_thread = max(per_thread, key=per_thread.get)
    total = per_thread[main_thread]
    shares = {}
    for name in FUNCS:
        w = sum(w for frames, w in stacks if frames[0] == main_thread and any(frame_name(f) == name for f in frames[1:]))
        shares[name] = w / total
    return shares, total


def check_against_truth(stacks, truth, key):
    shares, total = shares_by_function(stacks)
    assert total > 0
    for name in FUNCS:
        expected = truth[key][name]
        assert abs(shares[name] - expected) <= 0.03, (
            f"{name}: profile says {shares[name]:.3f}, the program measured {expected:.3f}")


@pytest.mark.parametrize("py", ALL_PYTHONS)
def test_launch_shares_match_truth(py, tmp_path):
    python = interpreter(py)
    truth_file, collapsed, svg = tmp_path / "truth.json", tmp_path / "out.txt", tmp_path / "out.svg"
    proc = run_loopspy("record", "--rate", 1000, "--mode", "cpu", "--collapsed", collapsed, "--flamegraph", svg, "--",
                       python, WORKLOADS / "cpu_shares.py", "--seconds", 4, "--truth", truth_file)
    truth = json.loads(truth_file.read_text())
    assert fully_symbolized_percent(proc.stderr) >= 99.0, proc.stderr
    assert "the command exited with status 0" in proc.stderr
    check_against_truth(parse_collapsed(collapsed), truth, "share")
    assert svg.read_text().startswith("<?xml")


@pytest.mark.parametrize("py", ALL_PYTHONS)
def test_attach_shares_match_truth(py, tmp_path, spawn):
    python = interpreter(py)
    truth_file, ready, collapsed = tmp_path / "truth.json", tmp_path / "ready", tmp_path / "out.txt"
    workload = spawn([python, WORKLOADS / "cpu_shares.py", "--seconds", "7", "--truth", truth_file, "--ready", ready])
    wait_for_file(ready, proc=workload)
    proc = run_loopspy("record", "-p", workload.pid, "-d", 4, "--mode", "cpu", "--collapsed", collapsed)
    assert workload.wait(timeout=30) == 0
    truth = json.loads(truth_file.read_text())
    assert fully_symbolized_percent(proc.stderr) >= 99.0, proc.stderr
    check_against_truth(parse_collapsed(collapsed), truth, "share_after_ready")
