"""asyncio tasks: which task each sample ran in, the task tree, and where tasks wait.

The user's story: a service's root task gathers workers, each deep in a chain of coroutines.
A physical flame graph shows the event loop calling coroutines; with --async it reads like the
program's task tree. `loopspy dump` prints the same tree as CPython's own `asyncio pstree`, and
every slow callback names the task that stalled the loop.
"""
import json
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import (ALL_PYTHONS, WORKLOADS, frame_name, interpreter, named, parse_collapsed, run_loopspy,
                      wait_for_file)

TASK_PYTHONS = ALL_PYTHONS  # 3.8 through 3.15, pyenv, Debian and Debian-sid builds
WORKERS = [f"worker-{i}" for i in range(3)]


def task_frames(frames):
    return [f[len("<task> "):] for f in frames if f.startswith("<task> ")]


def check_async_stacks_follow_the_task_tree(python, loop, tmp_path, handle_run="Handle._run"):
    rec = tmp_path / "tree.lspy"
    proc = run_loopspy("record", "--no-status", "-o", rec, "--", python, WORKLOADS / "task_tree.py",
                       "--seconds", "4", "--depth", "40", "--loop", loop, timeout=120)
    burned = json.loads(proc.stdout.strip().splitlines()[-1])["burned"]
    assert sorted(burned) == WORKERS

    run_loopspy("replay", rec, "--async", "--mode", "cpu", "--collapsed", tmp_path / "async.txt")
    run_loopspy("replay", rec, "--mode", "cpu", "--collapsed", tmp_path / "physical.txt")
    async_stacks = parse_collapsed(tmp_path / "async.txt")
    physical = parse_collapsed(tmp_path / "physical.txt")

    # Physical mode is unchanged: no task frames; under asyncio's own loop the leaf runs under
    # Handle._run (uvloop runs callbacks from native code).
    assert not any(task_frames(frames) for frames, _ in physical)
    spin_physical = sum(w for frames, w in physical if frame_name(frames[-1]) == "spin")
    if loop == "stdlib":
        assert any(handle_run in map(frame_name, frames) for frames, _ in physical if frame_name(frames[-1]) == "spin")

    per_worker = {w: 0 for w in WORKERS}
    unattributed = 0
    for frames, weight in async_stacks:
        if frame_name(frames[-1]) != "spin":
            continue
        tasks = task_frames(frames)
        names = [frame_name(f) for f in frames]
        if not tasks:
            unattributed += weight
            continue
        # root -> its gather -> worker-N -> worker's 40-deep chain -> hot leaf
        assert tasks[0] == "root" and len(tasks) == 2 and tasks[1] in per_worker, frames
        root_at, worker_at = frames.index("<task> root"), frames.index("<task> " + tasks[1])
        assert "orchestrate" in names[root_at:worker_at], frames
        assert names[worker_at + 1] == "worker" and names.count("chain") == 41, frames
        assert handle_run not in names, frames
        per_worker[tasks[1]] += weight
    spin_total = sum(per_worker.values()) + unattributed
    assert spin_total == spin_physical
    # Only a worker's first and last moments, before a snapshot has seen it and after the last
    # one that saw it running, may lack a task.
    assert unattributed <= 0.08 * spin_total, (unattributed, spin_total)
    # Each worker's time under its own task, in proportion to the CPU time it really burned.
    truth_total = sum(burned.values())
    for w in WORKERS:
        share, truth = per_worker[w] / spin_total, burned[w] / truth_total
        assert abs(share - truth) < 0.05, (w, share, truth)


@pytest.mark.parametrize("py", TASK_PYTHONS)
def test_async_stacks_put_each_worker_under_its_own_task_under_the_roots_gather(py, tmp_path):
    check_async_stacks_follow_the_task_tree(interpreter(py), "stdlib", tmp_path, named(py, "Handle._run"))


def test_under_uvloop_async_stacks_follow_the_task_tree_too(tmp_path):
    check_async_stacks_follow_the_task_tree(interpreter("debian-3.11"), "uvloop", tmp_path)


def start_task_tree(python, tmp_path, spawn):
    """The task tree workload, running for 30 s, once its tasks exist."""
    ready = tmp_path / "ready"
    proc = spawn([python, WORKLOADS / "task_tree.py", "--seconds", "30", "--depth", "5", "--ready", ready],
                 stdout=subprocess.DEVNULL)
    wait_for_file(ready, proc=proc)
    return proc


def pstree_edges(text):
    """(parent task, child task) pairs and roots from a tree of `(T) NAME` lines."""
    edges, roots, stack = set(), set(), []
    for line in text.splitlines():
        m = re.search(r"\(T\) (\S+)", line)
        if not m:
            continue
        depth = m.start()
        name = m.group(1)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            edges.add((stack[-1][1], name))
        else:
            roots.add(name)
        stack.append((depth, name))
    return edges, roots


@pytest.mark.parametrize("py", ["sid-3.14", "sid-3.15"])
def test_dump_shows_the_same_task_tree_as_cpythons_own_pstree(py, tmp_path, spawn):
    python = interpreter(py)
    proc = start_task_tree(python, tmp_path, spawn)
    ours = run_loopspy("dump", "-p", proc.pid).stdout
    theirs = subprocess.run([python, "-m", "asyncio", "pstree", str(proc.pid)], capture_output=True, text=True,
                            timeout=60, check=True).stdout
    our_edges, our_roots = pstree_edges(ours)
    their_edges, their_roots = pstree_edges(theirs)
    assert their_edges, theirs
    assert our_edges == their_edges
    assert our_roots == their_roots

    # The JSON form says the same for scripts.
    dump = json.loads(run_loopspy("dump", "-p", proc.pid, "--json").stdout)
    by_id = {t["id"]: t for t in dump["tasks"]}
    json_edges = {(by_id[p]["name"], t["name"]) for t in dump["tasks"] for p in t["awaited_by"] if p in by_id}
    assert json_edges == their_edges
    workers = [t for t in dump["tasks"] if t["name"] in WORKERS]
    assert len(workers) == 3 and all(w["state"] in ("suspended", "running") for w in workers), workers
    # One thread runs one task at a time: at least two of the three workers are suspended, and
    # each of those shows its coroutine chain from the awaiting leaf out to `worker`.
    suspended = [w for w in workers if w["state"] == "suspended"]
    assert len(suspended) >= 2, workers
    for w in suspended:
        names = [f["name"] for f in w["coroutine_stack"]]
        assert names[-1] == "worker" and "hot_leaf" in names and all(f["coroutine"] for f in w["coroutine_stack"]), w
    (thread,) = dump["threads"]
    assert thread["frames"][-1]["name"] == "<module>"


@pytest.mark.parametrize("py", TASK_PYTHONS)
def test_dump_prints_threads_and_the_task_tree(py, tmp_path, spawn):
    python = interpreter(py)
    proc = start_task_tree(python, tmp_path, spawn)
    out = run_loopspy("dump", "-p", proc.pid).stdout
    edges, roots = pstree_edges(out)
    assert {("root", w) for w in WORKERS} <= edges
    assert {("tg-parent", "tg-child-0"), ("tg-parent", "tg-child-1"), ("waiter-0", "shared"),
            ("waiter-1", "shared")} <= edges
    assert {"root", "tg-parent", "waiter-0", "waiter-1"} == roots
    assert f"Thread {proc.pid}" in out and "run_forever" in out
    # The workers' chains recurse (--depth 5): one line, with the count.
    assert re.search(r"chain \(.*task_tree\.py:\d+\) \u00d7[4-6]$", out, re.M), out
    assert max(len(re.findall(r"^\s*(?:└── )?chain \(", block, re.M)) for block in out.split("(T) ")) <= 3, out


def check_each_slow_callback_is_named_by_its_task(python, loop, tmp_path):
    truth_file = tmp_path / "truth.json"
    run_loopspy("record", "--no-status", "-o", tmp_path / "s.lspy", "--report", tmp_path / "r.json",
                "--threshold", "100", "--", python, WORKLOADS / "named_stalls.py", "--truth", truth_file,
                "--loop", loop)
    truth = json.loads(truth_file.read_text())
    report = json.loads((tmp_path / "r.json").read_text())
    slow = sorted(report["slow_callbacks"], key=lambda s: s["start_ms"])
    assert len(slow) == len(truth) == 2, slow
    for stall, cb in zip(sorted(truth, key=lambda t: t["start_ns"]), slow):
        assert cb["task"] == stall["task"], cb
        assert "stall" in cb["callback"], cb


@pytest.mark.parametrize("py", TASK_PYTHONS)
def test_every_slow_callback_names_its_task(py, tmp_path):
    check_each_slow_callback_is_named_by_its_task(interpreter(py), "stdlib", tmp_path)


def test_under_uvloop_every_slow_callback_names_its_task(tmp_path):
    # uvloop runs the same C Tasks from its own (native) loop: no Python loop frames at all.
    check_each_slow_callback_is_named_by_its_task(interpreter("debian-3.11"), "uvloop", tmp_path)


@pytest.mark.parametrize("py", ["pyenv-3.12", "sid-3.14"])
def test_short_lived_tasks_churning_never_take_a_hot_tasks_samples(py, tmp_path):
    python = interpreter(py)
    proc = run_loopspy("record", "--no-status", "-o", tmp_path / "c.lspy", "--task-rate", "200", "--async",
                       "--collapsed", tmp_path / "c.txt", "--", python, WORKLOADS / "task_churn.py", "--seconds", "4")
    assert json.loads(proc.stdout.strip().splitlines()[-1])["short_tasks"] > 2000
    hot_total = hot_under_hot = short_total = short_under_short = 0
    for frames, weight in parse_collapsed(tmp_path / "c.txt"):
        names = [frame_name(f) for f in frames]
        tasks = task_frames(frames)
        if "hot_work" in names:
            hot_total += weight
        if "short_job" in names:
            short_total += weight
        if not tasks:
            continue
        if "hot_work" in names:
            assert tasks[-1].startswith("hot-"), frames
            hot_under_hot += weight
        if "short_job" in names:
            assert tasks[-1].startswith("short-"), frames
            short_under_short += weight
    # The long-lived hot tasks are seen by every snapshot: nearly all their time is theirs.
    assert hot_under_hot >= 0.9 * hot_total, (hot_under_hot, hot_total)
    # Short tasks live well under a snapshot's period, so most run unnamed (their samples stay
    # physical), but those a snapshot did catch are drawn under their own task.
    assert short_total > 0 and short_under_short > 0, (short_under_short, short_total)


def test_tasks_report_and_suspended_time_outputs_match_how_long_tasks_really_waited(tmp_path):
    """--tasks prints each task's running and suspended time; --tasks-collapsed and
    --tasks-flamegraph draw the suspended time by await chain; --report carries `tasks`. The
    workload's own clocks say how long its waiting tasks lived (suspended all along) and how
    much CPU each worker burned."""
    python = interpreter("pyenv-3.12")
    collapsed, svg, report_file = tmp_path / "w.txt", tmp_path / "w.svg", tmp_path / "r.json"
    proc = run_loopspy("record", "--no-status", "-o", tmp_path / "t.lspy", "--tasks", "--tasks-collapsed", collapsed,
                       "--tasks-flamegraph", svg, "--report", report_file, "--", python, WORKLOADS / "task_tree.py",
                       "--seconds", "3", "--depth", "5", "--start-after", "0.5")
    truth = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith('{"burned"')))
    tasks = {t["name"]: t for t in json.loads(report_file.read_text())["tasks"]}
    for name, lived_s in truth["lived"].items():
        t = tasks[name]
        # Snapshots come every 100 ms (--task-rate 10) and a state holds until the next one: the
        # first sees a task up to one period after its birth, and its end counts up to the next.
        assert lived_s * 1000 - 120 <= t["suspended_ms"] <= lived_s * 1000 + 110, (name, t["suspended_ms"], lived_s)
        assert t["running_ms"] <= 5, t
    for name, burned_s in truth["burned"].items():
        assert 0.9 * burned_s * 1000 <= tasks[name]["running_ms"] <= 1.15 * burned_s * 1000 + 30, (name, tasks[name])
    sleeper_wait = tasks["tg-child-0"]["waits"][0]["stack"]
    assert [frame_name(f) for f in sleeper_wait[:2]] == ["sleeper", "sleep"], sleeper_wait
    assert sleeper_wait[-1].startswith("<awaiting "), sleeper_wait
    assert [frame_name(f) for f in tasks["waiter-0"]["waits"][0]["stack"]] == ["waiter", "<awaiting _asyncio.Task>"]

    # The table on stdout says the same.
    for name in ("tg-child-0", "waiter-1", "worker-2"):
        row = next(l for l in proc.stdout.splitlines() if l.rstrip().endswith("  " + name))
        running, waiting = map(float, row.split()[:2])
        assert abs(running - tasks[name]["running_ms"]) < 0.1 and abs(waiting - tasks[name]["suspended_ms"]) < 0.1

    # Collapsed: each waiting task's suspended time under the tasks that await it.
    stacks = parse_collapsed(collapsed)
    assert all(frames[0] == "tasks (suspended)" for frames, _ in stacks)
    def weight_ending(*names):
        return sum(w for frames, w in stacks if [frame_name(f) for f in frames[-len(names):]] == list(names))
    child = [(frames, w) for frames, w in stacks if "<task> tg-child-0" in frames]
    assert all(frames[:2] == ["tasks (suspended)", "<task> tg-parent"] for frames, _ in child), child
    # Suspended in its sleep; a snapshot may also have caught it created but not yet run (one period).
    waits = [w for frames, w in child if frames[-1] != "<not started>"]
    not_started = [w for frames, w in child if frames[-1] == "<not started>"]
    assert len(waits) == 1 and sum(not_started) <= 110_000, child
    assert abs(sum(w for _, w in child) - tasks["tg-child-0"]["suspended_ms"] * 1000) <= 1000
    assert weight_ending("<task> shared (awaited by 2 tasks)", "shared_wait", "sleep") == 0  # the leaf is <awaiting>
    assert any("<task> shared (awaited by 2 tasks)" in frames for frames, _ in stacks)
    total = sum(w for _, w in stacks)
    assert abs(total - 1000 * sum(t["suspended_ms"] for t in tasks.values())) <= len(tasks) * 1000

    # The flame graph is the same data drawn: valid SVG, every waiting task's frame in it.
    text = svg.read_text()
    ET.fromstring(text)
    for name in truth["lived"]:
        assert f"&lt;task&gt; {name}" in text, name



@pytest.mark.parametrize("py", ["pyenv-3.8", "pyenv-3.9", "pyenv-3.10", "debian-3.11", "pyenv-3.12", "pyenv-3.13",
                                "sid-3.14", "sid-3.15"])
def test_where_tasks_wait_is_a_chain_they_were_in_and_their_time_adds_up_to_their_lives(tmp_path, py):
    """--tasks on workers 40 coroutines deep that yield every few milliseconds: every wait chain
    is one the program's own cr_await walk saw that task in (no frame it never ran, none cut
    short), a task's running and waiting time add up to how long it lived, and the wait is said
    at the program's own innermost frame with the recursion folded."""
    report_file = tmp_path / "r.json"
    proc = run_loopspy("record", "--no-status", "-o", tmp_path / "t.lspy", "--tasks", "--report", report_file,
                       "--", interpreter(py), WORKLOADS / "task_tree.py", "--seconds", "3", "--depth", "40")
    truth = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith('{"burned"')))
    tasks = {t["name"]: t for t in json.loads(report_file.read_text())["tasks"]}
    seen = {name: {tuple(c) for c in chains} for name, chains in truth["chains"].items()}
    for name, t in tasks.items():
        for w in t["waits"]:
            if w["stack"][-1] == "<not started>":
                continue
            chain = tuple(frame_name(f) for f in w["stack"] if not f.startswith("<"))
            assert chain in seen.get(name, set()), (name, w["ms"], chain, seen.get(name))
    # Snapshots come every 100 ms: a task is seen alive up to one period longer than it lived.
    for name, lived_s in {**truth["lived"], **truth["workers_lived"]}.items():
        t = tasks[name]
        seen_ms = (name, t["running_ms"], t["suspended_ms"], lived_s * 1000)
        assert t["running_ms"] + t["suspended_ms"] <= lived_s * 1000 + 110, seen_ms
        assert t["running_ms"] + t["suspended_ms"] >= lived_s * 1000 - 120, seen_ms
    for name in WORKERS:
        longest = tasks[name]["waits"][0]
        where = [re.sub(r" \u00d7\d+$", "", f) for f in longest["where"]]
        assert [frame_name(f) for f in where] == ["worker", "chain", "chain", "hot_leaf", "sleep"], longest
        assert longest["where"][1].endswith(" \u00d740"), longest["where"]
        assert frame_name(longest["culprit"]) == "hot_leaf", longest
        assert longest["ms"] >= 0.9 * tasks[name]["suspended_ms"], tasks[name]
        # The table says it the same way.
        assert " -> ".join(longest["where"]) in proc.stdout, proc.stdout


MANY_TASKS = """
import asyncio, sys
async def idle(stop):
    await stop.wait()
async def main(n, ready):
    stop = asyncio.Event()
    tasks = [asyncio.create_task(idle(stop), name=f"idle-{i}") for i in range(n)]
    await asyncio.sleep(0.2)
    open(ready, "w").write("ready")
    await asyncio.sleep(60)
asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"""


@pytest.mark.parametrize("py,n", [(py, n) for py in ("pyenv-3.9", "pyenv-3.11", "pyenv-3.12", "pyenv-3.13", "sid-3.14",
                                                     "sid-3.15")
                                  for n in (20_000, 200_000)])
def test_dump_lists_every_task_of_a_process_with_tens_of_thousands(py, n, tmp_path, spawn):
    """A task set larger than one remote read (20,000 tasks make a 1 MiB table) is read in pieces,
    never silently empty."""
    ready = tmp_path / "ready"
    target = spawn([interpreter(py), "-c", MANY_TASKS, str(n), str(ready)])
    wait_for_file(ready, timeout=120, proc=target)
    dump = json.loads(run_loopspy("dump", "-p", target.pid, "--json", timeout=120).stdout)
    names = {t["name"] for t in dump["tasks"]}
    assert sum(name.startswith("idle-") for name in names) == n, len(names)
    assert "Task-1" in names
