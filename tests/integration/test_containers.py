"""A user whose asyncio service runs in a container (its own PID namespace, its own mount
namespace) profiles it from the host by its host pid, or from inside the container, and gets the
same slow callbacks, with the same accuracy, as for a bare process."""
import json
import os
import re
import shlex
import subprocess
import time

import pytest

from conftest import LOOPSPY, WORKLOADS, interpreter, run_loopspy, wait_for_file
from test_slow_callbacks import THRESHOLD_MS, check_report_against_truth

STALLS = WORKLOADS / "stalls.py"
PYENV_312 = "/root/.pyenv/versions/3.12.1"


def container_child(unshare, timeout=10):
    """The host pid of the process `unshare --fork` started (pid 1 of the new namespace)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = open(f"/proc/{unshare.pid}/task/{unshare.pid}/children").read().split()
        except OSError:
            children = []
        if children:
            return int(children[0])
        if unshare.poll() is not None:
            raise AssertionError(f"unshare exited with {unshare.returncode}")
        time.sleep(0.01)
    raise AssertionError("the container's first process did not start")


def nspid(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("NSpid:"):
            return [int(x) for x in line.split()[1:]]
    return []


def start_stalls_in_container(spawn, tmp_path, private_interpreter=False, linger=0.0):
    """stalls.py as pid 1 of its own PID + mount namespace. With private_interpreter, the
    interpreter lives at a path that exists only inside (/opt/containerpy, over a tmpfs), and its
    pyenv home is hidden there: loopspy must read it through the target's own view."""
    truth, ready = tmp_path / "truth.json", tmp_path / "ready"
    if private_interpreter:
        python = "/opt/containerpy/bin/python3"
        setup = (f"mount -t tmpfs none /opt && mkdir /opt/containerpy && "
                 f"mount --bind {PYENV_312} /opt/containerpy && mount -t tmpfs none /root/.pyenv/versions && "
                 f"export LD_LIBRARY_PATH=/opt/containerpy/lib && ")
    else:
        python, setup = interpreter("pyenv-3.12"), ""
    script = setup + "exec " + shlex.join([python, str(STALLS), "--truth", str(truth), "--ready", str(ready),
                                           "--warmup", "1.0", "--linger", str(linger)])
    unshare = spawn(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script])
    host_pid = container_child(unshare)
    wait_for_file(ready, proc=unshare)
    assert nspid(host_pid) == [host_pid, 1], "the workload is not pid 1 of its own namespace"
    if private_interpreter:
        assert not os.path.exists(python), "the container's interpreter path must not exist on the host"
        assert "/opt/containerpy/lib/libpython3.12" in open(f"/proc/{host_pid}/maps").read()
    return unshare, host_pid, truth


@pytest.mark.parametrize("private_interpreter", [False, True], ids=["pid-ns", "pid-and-mount-ns"])
def test_a_container_is_profiled_from_the_host_by_its_host_pid(private_interpreter, spawn, tmp_path):
    unshare, host_pid, truth_file = start_stalls_in_container(spawn, tmp_path, private_interpreter)
    report_file = tmp_path / "report.json"
    proc = run_loopspy("record", "-p", host_pid, "--threshold", THRESHOLD_MS, "--report", report_file,
                       "--no-status", "-o", tmp_path / "r.lspy")
    unshare.wait(timeout=30)
    report = json.loads(report_file.read_text())
    truth = json.loads(truth_file.read_text())
    # The loop thread is named by the id the host sees, not the container's 1.
    assert report["loop_threads"] == [host_pid]
    check_report_against_truth(report, truth, expect_thread=host_pid)
    # Nothing is lost to the namespace (a read or two may fail as the interpreter finalizes).
    samples = report["samples"]
    assert samples["on_cpu"] > 500 and samples["lost"] <= 0.01 * samples["on_cpu"], samples
    unseen = re.search(r"(\d+) samples of threads never seen running Python", proc.stderr)
    assert not unseen or int(unseen.group(1)) <= 0.01 * samples["on_cpu"], proc.stderr


def test_a_container_is_dumped_from_the_host_with_host_thread_ids(spawn, tmp_path):
    unshare, host_pid, _ = start_stalls_in_container(spawn, tmp_path, private_interpreter=True)
    dump = json.loads(run_loopspy("dump", "-p", host_pid, "--json").stdout)
    assert [t["tid"] for t in dump["threads"]] == [host_pid]
    # Frames are named through the container's own files, at their paths inside it.
    frames = [f for t in dump["threads"] for f in t["frames"]]
    assert any(f["file"].endswith("stalls.py") for f in frames), dump
    assert any(f["file"].startswith("/opt/containerpy/lib/python3.12/") for f in frames), dump


def test_loopspy_inside_the_container_launches_the_service(tmp_path):
    """loopspy itself runs in the new namespace (as a container's entry point would)."""
    truth_file, report_file = tmp_path / "truth.json", tmp_path / "report.json"
    cmd = ["unshare", "--pid", "--fork", "--mount-proc", LOOPSPY, "record", "--threshold", str(THRESHOLD_MS),
           "--report", str(report_file), "--no-status", "-o", str(tmp_path / "r.lspy"), "--",
           interpreter("pyenv-3.12"), str(STALLS), "--truth", str(truth_file), "--warmup", "1.5"]
    # (the warm-up lets the launched service's first stall come after loopspy has attached, on a busy machine too)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_file.read_text())
    # loopspy is pid 1 there; the workload it started is pid 2, its only thread 2.
    assert report["pid"] == 2 and report["loop_threads"] == [2], report["loop_threads"]
    check_report_against_truth(report, json.loads(truth_file.read_text()))


def test_loopspy_entering_the_container_attaches_to_its_pid_1(spawn, tmp_path):
    """From inside (nsenter into its PID and mount namespaces), the service is pid 1. When a
    namespace's pid 1 exits the kernel kills everything in it, loopspy too: the recording stops
    on its own first (the stalls take 3.4 s after ready, the workload idles on after them)."""
    unshare, host_pid, truth_file = start_stalls_in_container(spawn, tmp_path, private_interpreter=True, linger=4)
    report_file = tmp_path / "report.json"
    cmd = ["nsenter", "-t", str(host_pid), "--pid", "--mount", LOOPSPY, "record", "-p", "1", "-d", "4.5",
           "--threshold", str(THRESHOLD_MS), "--report", str(report_file), "--no-status",
           "-o", str(tmp_path / "r.lspy")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    unshare.wait(timeout=30)
    report = json.loads(report_file.read_text())
    assert report["pid"] == 1 and report["loop_threads"] == [1]
    check_report_against_truth(report, json.loads(truth_file.read_text()), expect_thread=1)
