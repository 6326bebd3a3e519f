"""A user types `loopspy top -p PID` on a stalling service, in a real terminal (tmux), and sees
live which callbacks stall the loop and for how long (against the service's own clock), which
functions are hot, and quits with q, leaving a complete recording and the service running."""
import json
import re
import shutil
import subprocess
import time

import pytest

from conftest import LOOPSPY, WORKLOADS, interpreter, run_loopspy, wait_for_file

SOCKET = "loopspy-top-test"
ROW = re.compile(r"^\s+([\d.]+)s\s+([\d.]+) ms\s+([\d.]+) ms\s+([\d.]+) ms\s+(\S+)", re.M)


def tmux(*args):
    return subprocess.run(["tmux", "-L", SOCKET, *map(str, args)], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def terminal():
    if not shutil.which("tmux"):
        pytest.fail("tmux is missing (run scripts/setup.sh --test)")
    yield tmux
    subprocess.run(["tmux", "-L", SOCKET, "kill-server"], capture_output=True)


def screen():
    return tmux("capture-pane", "-p", "-t", "top")


def test_top_shows_the_stalls_with_their_true_durations_and_q_leaves_a_recording(tmp_path, spawn, terminal):
    truth_file, ready, rec = tmp_path / "truth.json", tmp_path / "ready", tmp_path / "top.lspy"
    target = spawn([interpreter("pyenv-3.12"), WORKLOADS / "stalls.py", "--truth", truth_file, "--ready", ready,
                    "--rounds", "5", "--linger", "30"])
    wait_for_file(ready, proc=target)
    terminal("new-session", "-d", "-x", 80, "-y", 24, "-s", "top", f"{LOOPSPY} top -p {target.pid} -o {rec}")
    terminal("set-option", "-t", "top", "remain-on-exit", "on")
    # Within 3 s both stalling handlers are on the screen (a loop back from a stall is drawn at
    # once; the workload stalls from its start).
    started = time.monotonic()
    deadline = started + 8
    shown = ""
    while time.monotonic() < deadline:
        shown = screen()
        if "blocking_handler" in shown and "cpu_handler" in shown and ROW.search(shown):
            break
        time.sleep(0.2)
    assert "blocking_handler" in shown and "cpu_handler" in shown, shown
    assert time.monotonic() - started <= 3, "the stalls took more than 3 s to show"
    assert shown.startswith(f"loopspy top: pid {target.pid}, Python 3.12"), shown
    assert all(len(line) <= 80 for line in shown.splitlines()), shown
    rows = [m.groups() for m in ROW.finditer(shown)]
    assert "HOT FUNCTIONS" in shown and "burn_cpu" in shown, shown

    # A bigger terminal gets more of the tables, every line within its width.
    terminal("resize-window", "-t", "top", "-x", 120, "-y", 40)
    time.sleep(1.5)
    big = screen()
    assert len(big.splitlines()) > 24 and all(len(l) <= 120 for l in big.splitlines()), big
    # t switches the table to the blocking calls, where the sleep is.
    terminal("send-keys", "-t", "top", "t")
    time.sleep(1.2)
    blocking = screen()
    assert "BLOCKING CALLS" in blocking and "since start" in blocking, blocking
    # Since start: every sleep so far at blocking_handler, one row.
    m = re.search(r"^\s+(\d+)\s+[\d.]+ ms\s+[\d.]+ ms\s+[\d.]+ ms\s+clock_nanosleep\s+blocking_handler", blocking, re.M)
    assert m and int(m.group(1)) >= 3, blocking
    later = screen()
    rows += [m.groups() for m in ROW.finditer(later)]
    # t again: the live tasks, the longest suspended first, with where they wait. stalls.py's
    # "idle" task awaits asyncio.sleep in idle_waiter all along.
    terminal("send-keys", "-t", "top", "t")
    time.sleep(1.2)
    tasks = screen()
    assert re.search(r"TASKS: \d+ live, \d+ suspended", tasks), tasks
    assert re.search(r"^\s+[\d.]+s\s+idle\s+idle_waiter \(stalls\.py:\d+\)", tasks, re.M), tasks

    quit_at = time.monotonic()
    terminal("send-keys", "-t", "top", "q")
    while "wrote recording" not in screen() and time.monotonic() - quit_at < 5:
        time.sleep(0.05)
    assert time.monotonic() - quit_at < 1, screen()
    assert target.poll() is None, "the target stopped"
    # The recording is complete and replays.
    replay = run_loopspy("replay", rec, "--threshold", 100, "--slow-callbacks")
    assert "blocking_handler" in replay.stdout

    target.wait(timeout=120)
    truth = json.loads(truth_file.read_text())["stalls"]
    durations = {"blocking_handler": [], "cpu_handler": []}
    for s in truth:
        durations[s["coroutine"]].append((s["end_ns"] - s["start_ns"]) / 1e6)
    assert rows
    for ago, duration, on_cpu, blocked, callback in rows:
        name = callback.split(" ")[0]
        assert name in durations, callback
        # Each row is one of that handler's stalls, to 3 ms of the program's own clock.
        assert min(abs(float(duration) - d) for d in durations[name]) <= 3, (duration, durations[name])
        if name == "blocking_handler":
            assert float(blocked) >= 0.9 * float(duration)
        else:
            assert float(on_cpu) >= 0.8 * float(duration)


def test_top_without_a_terminal_prints_plain_reports_and_busy_since_start_is_the_recordings(tmp_path, spawn):
    """13 s, longer than the 10 s top keeps: the loop's busy share since start, added up as the
    window lets go of events, is the one the whole recording gives."""
    truth_file, ready = tmp_path / "truth.json", tmp_path / "ready"
    target = spawn([interpreter("pyenv-3.12"), WORKLOADS / "stalls.py", "--truth", truth_file, "--ready", ready,
                    "--rounds", "14"])
    wait_for_file(ready, proc=target)
    proc = run_loopspy("top", "-p", target.pid, "-d", 13, "--recording", tmp_path / "t.lspy")
    assert "\033[" not in proc.stdout
    assert proc.stdout.count("loopspy top: pid") >= 10, proc.stdout
    assert "STALLS" in proc.stdout and "blocking_handler" in proc.stdout, proc.stdout
    assert "wrote recording" in proc.stderr
    last = proc.stdout.split("loopspy top: pid")[-1]
    m = re.search(r"busy/idle (\d+)/(\d+)% \(1 s\) (\d+)/(\d+)% \(since start\)", last)
    assert m, last
    run_loopspy("replay", tmp_path / "t.lspy", "--report", tmp_path / "r.json")
    loop = json.loads((tmp_path / "r.json").read_text())["loop"]
    whole = 100 * loop["busy_ms"] / (loop["busy_ms"] + loop["idle_ms"])
    assert abs(int(m.group(3)) - whole) <= 1.5, (m.group(0), whole)


def test_top_of_a_dead_pid_is_one_clear_error(tmp_path):
    proc = run_loopspy("top", "-p", 999999, check=False)
    assert proc.returncode == 3 and proc.stderr.startswith("loopspy: error: ") and proc.stderr.count("\n") == 1, proc.stderr


def test_top_hot_functions_match_the_programs_own_cpu_shares(tmp_path, spawn):
    """The hot-function table's times (since start, at the last screen, which top prints when the
    target exits) split the three burners' CPU as the program's own thread clock does."""
    truth_file, ready = tmp_path / "truth.json", tmp_path / "ready"
    target = spawn([interpreter("pyenv-3.12"), WORKLOADS / "cpu_shares.py", "--seconds", "6", "--truth", truth_file,
                    "--ready", ready, "--start-after", "1"])
    proc = run_loopspy("top", "-p", target.pid, "--recording", tmp_path / "s.lspy", timeout=60)
    target.wait(timeout=30)
    truth = json.loads(truth_file.read_text())["share_of_calls"]
    last = proc.stdout.split("loopspy top: pid")[-1]
    total = {}
    for m in re.finditer(r"^\s+[\d.]+%\s+[\d.]+%\s+[\d.]+s\s+([\d.]+)s\s+(burn_\w+) \(cpu_shares\.py\)", last, re.M):
        total[m.group(2)] = float(m.group(1))
    assert set(total) == set(truth), last
    whole = sum(total.values())
    for name, share in truth.items():
        assert abs(100 * total[name] / whole - 100 * share) <= 3, (name, total, truth)
