"""Every flag a user can type does what the README says, checked against an independent truth:
the workload's own clocks and thread ids, the kernel's view of loopspy's file descriptors, a
real terminal (tmux), strace."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

from conftest import (LOOPSPY, ROOT, WORKLOADS, frame_name, interpreter, parse_collapsed, run_loopspy,
                      wait_for_file)

PY = "pyenv-3.12"


def summary_counts(replay_stdout):
    """{on_cpu, off_cpu, lost} from `loopspy replay FILE`'s summary."""
    m = re.search(r"samples:\s+(\d+) on-CPU, (\d+) off-CPU intervals, (\d+) lost", replay_stdout)
    assert m, replay_stdout
    return dict(zip(("on_cpu", "off_cpu", "lost"), map(int, m.groups())))


def test_version_prints_the_projects_version():
    declared = re.search(r"project\(loopspy VERSION (\S+)", (ROOT / "CMakeLists.txt").read_text()).group(1)
    for flag in ("-V", "--version"):
        assert run_loopspy(flag).stdout.splitlines()[0] == f"loopspy {declared}"


@pytest.mark.parametrize("args,fragment", [
    (["record", "-r", "100001", "-p", "1"], "--rate"),
    (["record", "-r", "0", "-p", "1"], "--rate"),
    (["record", "--sampling", "sometimes", "-p", "1"], "--sampling"),
    (["record", "--mode", "nope", "-p", "1"], "--mode"),
    (["no-such-command"], ""),
    ([], "subcommand"),
])
def test_bad_arguments_are_one_line_and_exit_2(args, fragment):
    proc = run_loopspy(*args, check=False)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    errors = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(errors) == 1 and errors[0].startswith("loopspy: error: ") and fragment in errors[0], proc.stderr


SPIN = ("import sys, time\n"
        "t = time.thread_time()\n"
        "while time.thread_time() - t < {seconds}: pass\n"
        "print(time.thread_time() - t)\n")


def thread_cpu_s(pid):
    """The main thread's time on a CPU so far, from the kernel's scheduler statistics (ns)."""
    return int(open(f"/proc/{pid}/task/{pid}/schedstat").read().split()[0]) / 1e9


@pytest.mark.parametrize("rate", [200, 1000, 4000])
def test_the_rate_sets_how_many_samples_a_second_of_cpu_gets(rate, tmp_path, spawn):
    ready = tmp_path / "ready"
    target = spawn([interpreter(PY), "-c", f"open({str(ready)!r}, 'w').write('1')\nwhile True: pass"])
    wait_for_file(ready, proc=target)
    rec = tmp_path / "r.lspy"
    before = thread_cpu_s(target.pid)
    p = subprocess.Popen([LOOPSPY, "record", "--no-status", "-r", str(rate), "-p", str(target.pid), "-d", "2",
                          "-o", str(rec)], stderr=subprocess.PIPE, text=True)
    assert "loopspy: recording pid" in p.stderr.readline()
    sampling = thread_cpu_s(target.pid)
    err = p.communicate(timeout=30)[1]
    after = thread_cpu_s(target.pid)
    assert p.returncode == 0, err
    samples = summary_counts(run_loopspy("replay", rec).stdout)["on_cpu"]
    # Sampling starts before the recorder's first line and stops before it exits: the samples
    # cover at most the whole run's CPU time, and at least the CPU time from that line on, less
    # the recorder's wind-down.
    assert rate * (after - sampling - 0.3) <= samples <= rate * (after - before) * 1.02 + 2, (
        samples, rate, after - before, after - sampling)
    assert samples >= rate * 1.5


def perf_event_fds(pid):
    n = 0
    for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == "anon_inode:[perf_event]":
                n += 1
        except OSError:
            pass
    return n


THREADS = ("import threading, time, sys\n"
           "def burn():\n"
           "    t = time.monotonic()\n"
           "    while time.monotonic() - t < 20: time.sleep(0.001)\n"
           "ts = [threading.Thread(target=burn) for _ in range(4)]\n"
           "[t.start() for t in ts]\n"
           "open(sys.argv[1], 'w').write('ready')\n"
           "[t.join() for t in ts]\n")


@pytest.mark.parametrize("sampling", ["per-cpu", "per-thread"])
def test_sampling_attaches_one_timer_per_cpu_or_one_per_thread(sampling, tmp_path, spawn):
    """per-cpu: one cpu-clock event per online CPU; per-thread: one per thread of the target
    (here the main thread and four others), whatever the number of CPUs."""
    ready = tmp_path / "ready"
    target = spawn([interpreter(PY), "-c", THREADS, ready])
    wait_for_file(ready, proc=target)
    rec = tmp_path / "s.lspy"
    p = subprocess.Popen([LOOPSPY, "record", "--no-status", "--sampling", sampling, "-p", str(target.pid),
                          "-d", "3", "-o", str(rec)], stderr=subprocess.PIPE, text=True)
    try:
        seen = 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None and seen == 0:
            seen = perf_event_fds(p.pid)
            time.sleep(0.05)
        time.sleep(0.3)
        seen = max(seen, perf_event_fds(p.pid)) if p.poll() is None else seen
    finally:
        _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    expected = os.cpu_count() if sampling == "per-cpu" else 5
    assert seen == expected, (sampling, seen, expected)
    assert summary_counts(run_loopspy("replay", rec).stdout)["on_cpu"] > 0


def two_loops_recording(tmp_path):
    rec, truth = tmp_path / "two.lspy", tmp_path / "truth.json"
    run_loopspy("record", "--no-status", "-o", rec, "--", interpreter(PY), WORKLOADS / "two_loops.py",
                "--truth", truth)
    return rec, json.loads(truth.read_text())


def report_of(tmp_path, rec, *flags):
    out = tmp_path / "report.json"
    run_loopspy("replay", rec, "--report", out, *flags)
    return json.loads(out.read_text())


def test_loop_thread_analyses_only_that_thread_as_the_loop(tmp_path):
    rec, truth = two_loops_recording(tmp_path)
    a, b = truth["threads"]["loop-a"], truth["threads"]["loop-b"]
    both = report_of(tmp_path, rec)
    assert sorted(both["loop_threads"]) == sorted([a, b])
    only_b = report_of(tmp_path, rec, "--loop-thread", b)
    assert only_b["loop_threads"] == [b]
    assert [cb["callback"].split()[0] for cb in only_b["slow_callbacks"]] == ["b_stall", "b_stall"]
    # The other thread is still in the profile: --loop-thread picks the loop, it filters nothing.
    collapsed = tmp_path / "c.txt"
    run_loopspy("replay", rec, "--loop-thread", b, "--collapsed", collapsed)
    assert any(frame_name(f) == "a_stall" for frames, _ in parse_collapsed(collapsed) for f in frames)


def test_replay_thread_keeps_only_those_threads(tmp_path):
    rec, truth = two_loops_recording(tmp_path)
    a = truth["threads"]["loop-a"]
    report = report_of(tmp_path, rec, "--thread", a)
    assert report["loop_threads"] == [a]
    assert sorted(cb["callback"].split()[0] for cb in report["slow_callbacks"]) == ["a_stall", "a_stall"]
    collapsed = tmp_path / "c.txt"
    run_loopspy("replay", rec, "--thread", a, "--mode", "wall", "--collapsed", collapsed)
    names = {frame_name(f) for frames, _ in parse_collapsed(collapsed) for f in frames}
    assert "a_stall" in names and "b_stall" not in names


def test_replay_from_and_to_keep_only_that_window(tmp_path):
    rec, truth = two_loops_recording(tmp_path)
    stalls = sorted(truth["stalls"], key=lambda s: s["start_ns"])
    full = report_of(tmp_path, rec)
    by_start = sorted(full["slow_callbacks"], key=lambda cb: cb["start_ms"])
    assert len(by_start) == 4
    # The recording's own clock: the first stall's start in it, and the truth's offsets after it.
    t0_ms = by_start[0]["start_ms"] - 0
    first_ns = stalls[0]["start_ns"]
    # A window from just before the second round of stalls to the end holds only that round.
    second_round_ms = t0_ms + (stalls[2]["start_ns"] - first_ns) / 1e6
    start_s = (second_round_ms - 20) / 1000
    later = report_of(tmp_path, rec, "--from", f"{start_s:.3f}")
    assert len(later["slow_callbacks"]) == 2, later["slow_callbacks"]
    assert all(cb["start_ms"] >= start_s * 1000 for cb in later["slow_callbacks"])
    assert abs(later["duration_s"] - (full["duration_s"] - start_s)) < 0.01
    # And a window that ends before it holds only the first round.
    earlier = report_of(tmp_path, rec, "--to", f"{start_s:.3f}")
    assert len(earlier["slow_callbacks"]) == 2
    assert abs(earlier["duration_s"] - start_s) < 0.01
    both = report_of(tmp_path, rec, "--from", "0.01", "--to", f"{start_s:.3f}")
    assert abs(both["duration_s"] - (start_s - 0.01)) < 0.01


def test_bpf_debug_prints_libbpfs_log_and_is_quiet_without_it(tmp_path):
    code = SPIN.format(seconds=0.3)
    loud = run_loopspy("record", "--no-status", "-o", tmp_path / "a.lspy", "--", interpreter(PY), "-c", code,
                       env={**os.environ, "LOOPSPY_BPF_DEBUG": "1"})
    quiet = run_loopspy("record", "--no-status", "-o", tmp_path / "b.lspy", "--", interpreter(PY), "-c", code,
                        env={k: v for k, v in os.environ.items() if k != "LOOPSPY_BPF_DEBUG"})
    libbpf = [l for l in loud.stderr.splitlines() if l.startswith("libbpf: ")]
    # libbpf's own account of loading loopspy's object: its maps and programs by name.
    assert any("loopspy" in l for l in libbpf), loud.stderr[:2000]
    assert not [l for l in quiet.stderr.splitlines() if l.startswith("libbpf: ")], quiet.stderr


def snapshot_lines(stderr):
    return [l for l in stderr.splitlines() if re.match(r"loopspy: task snapshot \d+ at ", l)]


@pytest.mark.parametrize("task_rate", [0, 5, 40])
def test_task_rate_sets_how_often_tasks_are_read(task_rate, tmp_path):
    """LOOPSPY_DEBUG_TASKS=1 prints each snapshot: their number follows --task-rate, and 0 takes
    none at all, so no sample is put under a task."""
    seconds = 3
    collapsed = tmp_path / "a.txt"
    proc = run_loopspy("record", "--no-status", "--task-rate", task_rate, "--async", "--collapsed", collapsed,
                       "-o", tmp_path / "t.lspy", "--", interpreter(PY), WORKLOADS / "task_tree.py",
                       "--seconds", seconds, "--depth", 3, env={**os.environ, "LOOPSPY_DEBUG_TASKS": "1"})
    lines = snapshot_lines(proc.stderr)
    for line in lines:
        # Each names the tasks it read: all ten of the workload's, once they exist.
        assert re.search(r": \d+ tasks in [\d.]+ ms, \d+ reads", line), line
    under_a_task = sum(w for frames, w in parse_collapsed(collapsed) if any(f.startswith("<task> ") for f in frames))
    if task_rate == 0:
        assert lines == [] and under_a_task == 0, proc.stderr
        return
    assert any("worker-0" in l and "tg-child-1" in l for l in lines), lines
    # The rate, plus the ones that follow new coroutines (a few at start) and the final one.
    assert task_rate * seconds * 0.8 <= len(lines) <= task_rate * seconds * 1.2 + 6, len(lines)
    assert under_a_task > 0
    quiet = run_loopspy("record", "--no-status", "--task-rate", task_rate, "-o", tmp_path / "q.lspy", "--",
                        interpreter(PY), WORKLOADS / "task_tree.py", "--seconds", 1, "--depth", 3,
                        env={k: v for k, v in os.environ.items() if k != "LOOPSPY_DEBUG_TASKS"})
    assert snapshot_lines(quiet.stderr) == []


STATUS = re.compile(r"loopspy: recording pid (\d+)\s+([\d.]+)s\s+(\d+) samples\s+(\d+) lost\s+(\d+) threads")


def tmux(*args):
    return subprocess.run(["tmux", "-L", "loopspy-test", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def terminal():
    """A real 80x24 terminal: tmux, on its own server socket."""
    if not shutil.which("tmux"):
        pytest.fail("tmux is missing (run scripts/setup.sh --test)")
    yield tmux
    subprocess.run(["tmux", "-L", "loopspy-test", "kill-server"], capture_output=True)


@pytest.mark.parametrize("no_status", [False, True])
def test_on_a_terminal_a_live_status_line_counts_up_unless_no_status(no_status, tmp_path, spawn, terminal):
    ready = tmp_path / "ready"
    target = spawn([interpreter(PY), WORKLOADS / "cpu_shares.py", "--seconds", "30", "--truth", tmp_path / "t.json",
                    "--ready", ready])
    wait_for_file(ready, proc=target)
    rec = tmp_path / "s.lspy"
    cmd = f"{LOOPSPY} record -p {target.pid} -o {rec} {'--no-status' if no_status else ''}"
    terminal("new-session", "-d", "-x", "80", "-y", "24", "-s", "rec", cmd)
    terminal("set-option", "-t", "rec", "remain-on-exit", "on")
    seen = []
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        screen = terminal("capture-pane", "-p", "-t", "rec")
        seen += [m.groups() for m in STATUS.finditer(screen)]
        time.sleep(0.25)
    terminal("send-keys", "-t", "rec", "C-c")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "wrote recording" not in terminal("capture-pane", "-p", "-t", "rec"):
        time.sleep(0.1)
    screen = terminal("capture-pane", "-p", "-t", "rec")
    assert "fully symbolized" in screen and "wrote recording" in screen, screen
    if no_status:
        assert seen == [], seen
        return
    # One line that counts up: the same pid, rising time and samples, no lost samples.
    assert len({s[1] for s in seen}) >= 3, seen
    assert {int(s[0]) for s in seen} == {target.pid}
    elapsed = [float(s[1]) for s in seen]
    samples = [int(s[2]) for s in seen]
    assert elapsed == sorted(elapsed) and samples == sorted(samples) and samples[-1] > samples[0]
    # About a thousand samples a second of a busy thread.
    assert 500 * (elapsed[-1] - elapsed[0]) <= samples[-1] - samples[0] <= 1300 * (elapsed[-1] - elapsed[0]) + 300
    # The line is rewritten in place, never scrolled: at most one status line on the screen.
    assert len(STATUS.findall(screen)) <= 1, screen


def ptrace_calls(argv):
    """ptrace requests loopspy made, seen by strace."""
    out = subprocess.run(["strace", "-f", "-qq", "-e", "trace=ptrace", "-o", "/dev/stderr", *argv],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout, re.findall(r"ptrace\((PTRACE_\w+)", out.stderr)


def test_dump_holds_the_threads_still_unless_nonblocking(tmp_path, spawn):
    if not shutil.which("strace"):
        pytest.fail("strace is missing (run scripts/setup.sh --test)")
    ready = tmp_path / "ready"
    target = spawn([interpreter(PY), WORKLOADS / "task_tree.py", "--seconds", "30", "--depth", "3", "--ready", ready],
                   stdout=subprocess.DEVNULL)
    wait_for_file(ready, proc=target)
    held, held_calls = ptrace_calls([LOOPSPY, "dump", "-p", str(target.pid)])
    free, free_calls = ptrace_calls([LOOPSPY, "dump", "--nonblocking", "-p", str(target.pid)])
    assert {"PTRACE_SEIZE", "PTRACE_INTERRUPT"} <= set(held_calls) or "PTRACE_ATTACH" in held_calls, held_calls
    assert free_calls == [], free_calls
    for out in (held, free):
        assert f"Thread {target.pid}" in out and "worker-0" in out and "tg-child-0" in out, out
    assert target.poll() is None
