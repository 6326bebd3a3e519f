"""A user profiles a service that runs in several processes: a gunicorn master with uvicorn
workers, a multiprocessing pool, a launcher that execs Python. With --subprocesses every process
is recorded, those started later included, and each stall is listed with its process's pid and
the duration the process itself measured."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import LOOPSPY, WORKLOADS, interpreter, parse_collapsed, run_loopspy, wait_for_file
from test_slow_callbacks import THRESHOLD_MS, check_report_against_truth


def tolerance_ms(true_ms):
    """What test_slow_callbacks allows: the workload times only its sleep, the callback is more."""
    return max(3.0, 0.05 * true_ms)


def children_of(pid):
    try:
        return [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def wait_until(predicate, timeout=20, what="a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def start_recording(tmp_path, *args, prefix=()):
    """loopspy record --subprocesses in the background; stderr goes to a file to watch."""
    err = open(tmp_path / "loopspy.err", "w")
    rec = subprocess.Popen([*prefix, LOOPSPY, "record", "--subprocesses", "--no-status", "--threshold", str(THRESHOLD_MS),
                            "--report", str(tmp_path / "report.json"), "-o", str(tmp_path / "r.lspy"), *map(str, args)],
                           stderr=err, stdout=subprocess.DEVNULL)
    return rec, tmp_path / "loopspy.err"


def stderr_lines(path):
    return pathlib.Path(path).read_text().splitlines()


def match_stalls(report, stalls, window_ns):
    """Every stall inside the window is one slow callback of its own process, of its duration;
    no slow callback is there without a stall."""
    lo, hi = window_ns
    inside = [s for s in stalls if s["start_ns"] >= lo and s["end_ns"] <= hi]
    assert inside, "no stall fell inside the recording"
    slow = report["slow_callbacks"]
    by_pid = {}
    for cb in slow:
        by_pid.setdefault(cb["pid"], []).append(cb)
    for pid in {s["pid"] for s in inside}:
        # In time order, each slow callback is the next stall of its process, or the next two when
        # they ran back to back: a second request already waiting when the first ended runs in
        # the same loop iteration with the same callback frame, one busy period the loop analysis
        # reports as one callback.
        todo = sorted((s for s in inside if s["pid"] == pid), key=lambda s: s["start_ns"])
        got = sorted(by_pid.get(pid, []), key=lambda cb: cb["start_ms"])
        durations = [cb["duration_ms"] for cb in got]
        k = 0
        for d in durations:
            assert k < len(todo), (pid, [(s["end_ns"] - s["start_ns"]) / 1e6 for s in todo], durations)
            one = (todo[k]["end_ns"] - todo[k]["start_ns"]) / 1e6
            if abs(d - one) <= tolerance_ms(one):
                k += 1
                continue
            assert k + 1 < len(todo) and todo[k + 1]["start_ns"] - todo[k]["end_ns"] < 2_000_000, (pid, k, d, one)
            two = (todo[k + 1]["end_ns"] - todo[k]["start_ns"]) / 1e6
            assert abs(d - two) <= tolerance_ms(two), (pid, k, d, one, two)
            k += 2
        assert k == len(todo), (pid, "stalls without a slow callback", todo[k:], durations)
    assert set(by_pid) <= {s["pid"] for s in stalls}, by_pid.keys()
    return inside


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_multiprocessing_children_started_after_attach_are_recorded_each_with_its_pid(start, tmp_path, spawn):
    truth_dir, ready = tmp_path / "truth", tmp_path / "ready"
    truth_dir.mkdir()
    parent = spawn([interpreter("pyenv-3.12"), WORKLOADS / "mp_children.py", "--truth-dir", truth_dir,
                    "--ready", ready, "--start", start])
    wait_for_file(ready, proc=parent)
    t0 = time.monotonic_ns()
    rec, err = start_recording(tmp_path, "-p", parent.pid)
    assert rec.wait(timeout=60) == 0, pathlib.Path(err).read_text()
    parent.wait(timeout=30)
    truths = [json.loads(p.read_text()) for p in truth_dir.glob("*.json")]
    assert len(truths) == 2
    stalls = [dict(s, pid=t["pid"]) for t in truths for s in t["stalls"]]
    report = json.loads((tmp_path / "report.json").read_text())
    match_stalls(report, stalls, (t0, time.monotonic_ns()))
    # Each child is its own process in the report, under its parent, and its loop is its own.
    processes = {p["pid"]: p for p in report["processes"]}
    # (spawn also starts multiprocessing's resource tracker, a Python process of its own)
    assert {parent.pid} | {t["pid"] for t in truths} <= set(processes)
    for t in truths:
        assert len(processes[t["pid"]]["loop_threads"]) == 1
        assert processes[t["pid"]]["loop"]["iterations"] >= 6
    lines = stderr_lines(err)
    for t in truths:
        assert any(f"child {t['pid']} of {parent.pid}" in l or f"process {t['pid']} exec'd" in l for l in lines), lines


def test_each_process_is_its_own_section_in_every_output_and_replay_picks_one(tmp_path, spawn):
    truth_dir, ready = tmp_path / "truth", tmp_path / "ready"
    truth_dir.mkdir()
    parent = spawn([interpreter("pyenv-3.12"), WORKLOADS / "mp_children.py", "--truth-dir", truth_dir,
                    "--ready", ready, "--pause", "0.3"])
    wait_for_file(ready, proc=parent)
    rec, err = start_recording(tmp_path, "-p", parent.pid, "--collapsed", tmp_path / "out.txt")
    assert rec.wait(timeout=60) == 0, pathlib.Path(err).read_text()
    pids = sorted(json.loads(p.read_text())["pid"] for p in truth_dir.glob("*.json"))
    # Collapsed stacks: every line starts with its process, then its thread.
    stacks = parse_collapsed(tmp_path / "out.txt")
    roots = {frames[0].split(" ")[1] for frames, _ in stacks}
    assert {str(p) for p in pids} <= roots
    assert all(frames[0].startswith("process ") and frames[1].startswith("thread ") for frames, _ in stacks)
    assert all("mp_children.py" in frames[0] for frames, _ in stacks)
    # replay --pid: only that process.
    one = pids[0]
    out = run_loopspy("replay", tmp_path / "r.lspy", "--pid", one, "--report", tmp_path / "one.json")
    only = json.loads((tmp_path / "one.json").read_text())
    assert only["slow_callbacks"] and {cb["pid"] for cb in only["slow_callbacks"]} == {one}
    assert only["loop_threads"] == [one]
    # A flame graph of the whole recording has a section per process.
    run_loopspy("replay", tmp_path / "r.lspy", "--flamegraph", tmp_path / "all.svg")
    svg = (tmp_path / "all.svg").read_text()
    for p in pids:
        assert f"process {p} " in svg
    bad = run_loopspy("replay", tmp_path / "r.lspy", "--pid", "999999", "--report", tmp_path / "x.json", check=False)
    assert bad.returncode == 2 and "has no process 999999" in bad.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return int(r.read())


def slow_round(port, ms_list):
    """Requests at once, so that both workers take one (a worker asleep in a handler accepts none)."""
    answers = []
    threads = [threading.Thread(target=lambda ms=ms: answers.append(get(port, f"/slow?ms={ms}"))) for ms in ms_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def ns_pid(host_pid):
    """A process's pid in its own (innermost) PID namespace."""
    for line in open(f"/proc/{host_pid}/status"):
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    raise AssertionError(f"no NSpid for {host_pid}")


@pytest.mark.parametrize("where", ["bare", "container-from-host", "container-from-inside"])
def test_gunicorn_with_uvicorn_workers_every_workers_stalls_with_its_pid_and_a_restarted_worker(where, tmp_path, spawn):
    """The service as people run it: a gunicorn master, 2 uvicorn workers, a handler that blocks
    in time.sleep, local load. Bare; in a container (its own PID and mount namespaces) profiled
    from the host by the master's host pid; and from inside the container, where it is pid 1."""
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    port = free_port()
    gunicorn = [interpreter("debian-3.11"), "-m", "gunicorn", "-w", "2", "-k", "uvicorn.workers.UvicornWorker",
                "-b", f"127.0.0.1:{port}", "--chdir", str(WORKLOADS), "asgi_app:app"]
    container = where != "bare"
    launched = spawn(["unshare", "--pid", "--fork", "--mount-proc", *gunicorn] if container else gunicorn,
                     env={**os.environ, "LOOPSPY_TRUTH_DIR": str(truth_dir)},
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from test_containers import container_child
    master = container_child(launched) if container else launched.pid
    workers = wait_until(lambda: len(children_of(master)) == 2 and children_of(master), what="2 workers")
    wait_until(lambda: len({get(port, "/") for _ in range(8)}) == 2, what="both workers serving")
    # Every pid as the recording names it: the host's, or the container's own from inside; the
    # workers write their truth (and answer requests) with the container's.
    inside = where == "container-from-inside"
    own = {w: ns_pid(w) for w in workers}
    seen_as = (lambda host: own[host]) if inside else (lambda host: host)

    prefix = ["nsenter", "-t", str(master), "--pid", "--mount"] if inside else []
    rec, err = start_recording(tmp_path, "-p", 1 if inside else master, "-d", 14, prefix=prefix)
    wait_until(lambda: sum("recording child" in l for l in stderr_lines(err)) == 2, what="loopspy to attach")
    t0 = time.monotonic_ns()
    served = []
    for _ in range(5):
        served += slow_round(port, [120, 135])
    # gunicorn replaces a worker that exits: the new one is forked during the recording.
    os.kill(workers[0], signal.SIGTERM)
    new = wait_until(lambda: [c for c in children_of(master) if c not in workers] or None, what="a new worker")[0]
    own[new] = ns_pid(new)
    wait_until(lambda: any(f"child {seen_as(new)} of " in l for l in stderr_lines(err)), what="the new worker recorded")
    wait_until(lambda: own[new] in {get(port, "/") for _ in range(8)}, what="the new worker serving")
    for _ in range(5):
        served += slow_round(port, [110, 145])
    t1 = time.monotonic_ns()
    assert rec.wait(timeout=60) == 0, pathlib.Path(err).read_text()
    assert {own[workers[0]], own[workers[1]], own[new]} <= set(served), "the load did not reach every worker"
    # gunicorn's graceful stop: each worker writes its truth as it shuts down.
    os.kill(master, signal.SIGTERM)
    wait_until(lambda: launched.poll() is not None, timeout=30, what="gunicorn to stop")

    to_view = {own[h]: seen_as(h) for h in own}
    stalls = [json.loads(l) for p in truth_dir.glob("*.jsonl") for l in p.read_text().splitlines()]
    stalls = [dict(s, pid=to_view[s["pid"]]) for s in stalls]
    report = json.loads((tmp_path / "report.json").read_text())
    inside_window = match_stalls(report, stalls, (t0, t1))
    assert {s["pid"] for s in inside_window} == {seen_as(workers[0]), seen_as(workers[1]), seen_as(new)}
    for cb in report["slow_callbacks"]:
        assert any("slow_handler" in f for f in cb["stack"]), json.dumps(cb, indent=1)
        assert any(b["syscall"] == "clock_nanosleep" for b in cb["blocking"]), (cb, pathlib.Path(err).read_text())
    processes = {p["pid"] for p in report["processes"]}
    assert {seen_as(workers[0]), seen_as(workers[1]), seen_as(new)} <= processes
    assert (1 if inside else master) in processes
    # The worker that exited was dropped, and loopspy said nothing was lost to it.
    assert "this profile is missing" not in pathlib.Path(err).read_text()


def test_a_launcher_that_execs_python_is_recorded_on_after_the_exec(tmp_path):
    truth_file, report_file = tmp_path / "truth.json", tmp_path / "report.json"
    python = interpreter("pyenv-3.12")
    launcher = (f"import os, time; time.sleep(0.3); "
                f"os.execv({python!r}, [{python!r}, {str(WORKLOADS / 'stalls.py')!r}, '--truth', {str(truth_file)!r}])")
    proc = run_loopspy("record", "--threshold", THRESHOLD_MS, "--report", report_file, "--no-status",
                       "-o", tmp_path / "r.lspy", "--", python, "-c", launcher)
    assert "exec'd" in proc.stderr and "recording it on" in proc.stderr, proc.stderr
    check_report_against_truth(json.loads(report_file.read_text()), json.loads(truth_file.read_text()))


def test_a_target_that_execs_a_program_that_is_not_python_ends_the_recording_saying_so(tmp_path, spawn):
    ready = tmp_path / "ready"
    code = (f"import os, time\nopen({str(ready)!r}, 'w').write('1')\nt = time.monotonic()\n"
            f"while time.monotonic() - t < 2.0: pass\nos.execv('/bin/sleep', ['sleep', '30'])\n")
    target = spawn([interpreter("pyenv-3.12"), "-c", code])
    wait_for_file(ready, proc=target)
    started = time.monotonic()
    proc = run_loopspy("record", "-p", target.pid, "--no-status", "-o", tmp_path / "r.lspy",
                       "--collapsed", tmp_path / "out.txt", timeout=30)
    assert time.monotonic() - started < 10, "the recording went on after the target left Python"
    assert f"process {target.pid} exec'd sleep 30" in proc.stderr and "the recording ends here" in proc.stderr
    # The recording up to the exec is whole: the busy loop is in it.
    replay = run_loopspy("replay", tmp_path / "r.lspy")
    assert "target left Python" in replay.stdout or "cut short" not in replay.stderr
    burned = sum(w for frames, w in parse_collapsed(tmp_path / "out.txt") if any("<module>" in f for f in frames))
    # Of the ~2 s it spun (in µs), recorded from attach on (attaching takes 0.3-0.7 s here).
    assert burned >= 1_000_000, burned
    assert target.poll() is None  # left running: loopspy only stopped watching


def test_dump_subprocesses_dumps_the_target_and_every_python_child(tmp_path, spawn):
    truth_dir, ready = tmp_path / "truth", tmp_path / "ready"
    truth_dir.mkdir()
    parent = spawn([interpreter("pyenv-3.12"), WORKLOADS / "mp_children.py", "--truth-dir", truth_dir,
                    "--ready", ready, "--pause", "0"])
    wait_for_file(ready, proc=parent)
    kids = wait_until(lambda: len(children_of(parent.pid)) == 2 and children_of(parent.pid), what="2 children")
    time.sleep(0.2)  # their loops run
    dumps = json.loads(run_loopspy("dump", "-s", "-p", parent.pid, "--json").stdout)
    assert [d["pid"] for d in dumps] == [parent.pid, *sorted(kids)]
    for d in dumps[1:]:
        frames = [f["name"] for t in d["threads"] for f in t["frames"]]
        assert "child_main" in frames or "stall" in frames or any("run" in f for f in frames), d
    text = run_loopspy("dump", "--subprocesses", "-p", parent.pid).stdout
    for pid in [parent.pid, *kids]:
        assert f"Process {pid}:" in text
    # Without -s, the target alone.
    assert json.loads(run_loopspy("dump", "-p", parent.pid, "--json").stdout)["pid"] == parent.pid
