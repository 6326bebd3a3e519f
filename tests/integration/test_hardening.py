"""Hostile inputs and hostile paths, as an attacker or a careless user would try them: a device
or a FIFO given as a recording, a sparse file of gigabytes, a planted symbolic link in a shared
folder, an output folder that does not exist; and the error contract: one line, the exit code
the README's table gives."""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import (LOOPSPY, ROOT, assert_one_line_error, interpreter, run_loopspy, unsupported_python,
                      wait_for_file)

PYTHON = "/usr/bin/python3.11"


def rss_kb_peak(time_stderr):
    return int(re.search(r"maxrss=(\d+)", time_stderr).group(1))


def test_replaying_a_device_a_fifo_or_a_directory_is_refused_at_once(tmp_path):
    fifo = tmp_path / "no-writer.lspy"
    os.mkfifo(fifo)
    for path, kind in [("/dev/zero", "a character device"), (fifo, "a FIFO"), (tmp_path, "a directory")]:
        started = time.monotonic()
        proc = run_loopspy("replay", path, check=False, timeout=10)
        assert time.monotonic() - started < 3
        assert_one_line_error(proc, 2, f"is {kind}, not a loopspy recording")


def test_a_sparse_file_of_gigabytes_is_refused_without_reading_it(tmp_path):
    sparse = tmp_path / "huge.lspy"
    with open(sparse, "wb") as f:
        f.truncate(3 << 30)
    started = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "maxrss=%M", LOOPSPY, "replay", str(sparse)],
                          capture_output=True, text=True, timeout=30)
    assert time.monotonic() - started < 2
    assert proc.returncode == 2 and "not a loopspy recording" in proc.stderr, proc.stderr
    assert rss_kb_peak(proc.stderr) < 64 * 1024, proc.stderr  # it read none of the 3 GB


def test_a_recording_of_only_its_header_is_an_empty_recording(tmp_path):
    whole = tmp_path / "whole.lspy"
    run_loopspy("record", "-o", whole, "--", PYTHON, "-c", "pass")
    bare = tmp_path / "bare.lspy"
    bare.write_bytes(whole.read_bytes()[:16])
    assert_one_line_error(run_loopspy("replay", bare, "--slow-callbacks", check=False), 2, "empty recording")


@pytest.mark.parametrize("args,fragment", [
    ([], "A subcommand is required (see --help)"),
    (["replay", "--thread", "abc", "x.lspy"], "--thread: abc is not a number (see --help)"),
    (["record", "--mode", "bogus", "-p", "1"], "--mode: bogus not in {cpu,busy,wall} (see --help)"),
    (["record", "-f", "flamegraph", "--", PYTHON, "-c", "pass"], "-f/--format names the format of -o FILE: give -o too"),
    (["record", "-o", "out.weird", "--", PYTHON, "-c", "pass"], "give -f FORMAT"),
])
def test_each_bad_argument_is_one_line_and_exit_2(args, fragment):
    assert_one_line_error(run_loopspy(*args, check=False), 2, fragment)


def test_a_planted_symbolic_link_is_not_followed_and_nothing_is_recorded(tmp_path):
    """A shared folder (sticky, world-writable like /tmp) where someone planted out.svg pointing
    at a file root owns: root's loopspy refuses before launching anything, the file is intact;
    --force, given by the user who means it, writes where the link points."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    for name in ["out.svg", "rec.lspy"]:
        (shared / name).symlink_to(victim)
    marker = tmp_path / "ran"
    command = ["--", PYTHON, "-c", f"open({str(marker)!r}, 'w')"]
    assert_one_line_error(run_loopspy("record", "-o", shared / "out.svg", *command, check=False), 2, "is a symbolic link", "--force")
    assert_one_line_error(run_loopspy("record", "-o", shared / "rec.lspy", *command, check=False), 2, "is a symbolic link")
    assert_one_line_error(run_loopspy("replay", ROOT / "tests/regression/recordings/stalls.lspy", "--report", shared / "out.svg",
                               check=False), 2, "is a symbolic link")
    assert victim.read_text() == "precious\n" and not marker.exists()
    # No temporary with a guessable name either: the folder holds only the planted links.
    assert sorted(p.name for p in shared.iterdir()) == ["out.svg", "rec.lspy"]
    run_loopspy("record", "--force", "-o", shared / "out.svg", "--recording", tmp_path / "r.lspy", *command)
    assert victim.read_text().startswith("<?xml") and marker.exists()


def test_an_output_in_a_missing_folder_is_refused_before_the_target_runs(tmp_path):
    marker = tmp_path / "ran"
    for flags in (["-o", tmp_path / "no/such/folder/x.svg"], ["--report", tmp_path / "nope/r.json"],
                  ["--recording", tmp_path / "gone/r.lspy"]):
        proc = run_loopspy("record", *flags, "--", PYTHON, "-c", f"open({str(marker)!r}, 'w')", check=False)
        assert_one_line_error(proc, 2, "No such file or directory")
        assert "recording pid" not in proc.stderr
    assert not marker.exists()


def test_a_read_only_folder_is_refused_before_the_target_runs(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    proc = subprocess.run(["unshare", "--mount", "sh", "-c",
                           f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && "
                           f"{LOOPSPY} record -o {ro}/x.svg -- {PYTHON} -c pass"],
                          capture_output=True, text=True, timeout=60)
    assert_one_line_error(proc, 1, "Read-only file system")
    assert "recording pid" not in proc.stderr


def test_dev_null_and_stdout_take_outputs(tmp_path):
    rec = ROOT / "tests/regression/recordings/stalls.lspy"
    proc = run_loopspy("record", "-o", "/dev/null", "--recording", tmp_path / "r.lspy", "--", PYTHON, "-c", "pass")
    assert "wrote flame graph to /dev/null" in proc.stderr
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    collapsed = run_loopspy("replay", rec, "-o", "-")
    assert re.search(r"^thread .*stalls\.py.* \d+$", collapsed.stdout, re.M), collapsed.stdout[:300]
    report = run_loopspy("replay", rec, "--report", "-")
    assert json.loads(report.stdout)["slow_callbacks"]
    assert_one_line_error(run_loopspy("replay", rec, "--report", "-", "-o", "-", check=False), 2, "only one output can go to stdout")


def test_a_loop_thread_that_does_not_exist_is_refused(tmp_path, spawn):
    ready = tmp_path / "ready"
    p = spawn([PYTHON, "-c", f"import time; open({str(ready)!r}, 'w').write('1'); time.sleep(30)"])
    wait_for_file(ready, proc=p)
    assert_one_line_error(run_loopspy("record", "-p", p.pid, "--loop-thread", 12345, "-d", 1, check=False), 2,
                   f"--loop-thread 12345: process {p.pid} has no such thread")
    rec = ROOT / "tests/regression/recordings/stalls.lspy"
    assert_one_line_error(run_loopspy("replay", rec, "--loop-thread", 12345, "--slow-callbacks", check=False), 2,
                   "--loop-thread 12345: the recording has no such thread (it has ")


def readme_exit_codes():
    text = (ROOT / "README.md").read_text()
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d) \| (.+) \|$", text, re.M)}


def exit_code_scenarios(tmp_path, spawn):
    """One real way to each exit code."""
    ready = tmp_path / "ready"
    sleeper = spawn(["sleep", "30"])
    old_argv, _ = unsupported_python("3.16", tmp_path)
    old = spawn([*old_argv, str(ready)])
    wait_for_file(ready, proc=old)
    py = spawn([PYTHON, "-c", "import time; time.sleep(30)"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    return {
        0: (["record", "-d", "0.5", "--", PYTHON, "-c", "pass"], {}),
        1: (["record", "-o", f"{tmp_path}/ro/x.svg", "--", PYTHON, "-c", "pass"], {"read_only": tmp_path / "ro"}),
        2: (["record", "--rate", "0", "-p", str(py.pid)], {}),
        3: (["record", "-p", str(dead.pid), "-d", "1"], {}),
        4: (["record", "-p", str(sleeper.pid), "-d", "1"], {}),
        5: (["record", "-p", str(old.pid), "-d", "1"], {}),
        6: (["record", "-p", str(py.pid), "-d", "1"], {"unprivileged": True}),
        7: (["record", "-p", str(py.pid), "-d", "1"], {"env": {**os.environ, "LOOPSPY_SYSFS_BTF": "/nonexistent"}}),
    }


def test_every_exit_code_in_the_readmes_table_is_what_loopspy_returns(tmp_path, spawn):
    table = readme_exit_codes()
    scenarios = exit_code_scenarios(tmp_path, spawn)
    assert set(table) == set(scenarios), (table, set(scenarios))
    for code, (args, how) in scenarios.items():
        if how.get("read_only"):
            ro = how["read_only"]
            ro.mkdir()
            proc = subprocess.run(["unshare", "--mount", "sh", "-c", f"mount --bind {ro} {ro} && mount -o remount,bind,ro "
                                   f"{ro} && exec {LOOPSPY} " + " ".join(map(str, args))],
                                  capture_output=True, text=True, timeout=60)
        elif how.get("unprivileged"):
            proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", LOOPSPY, *args],
                                  capture_output=True, text=True, timeout=60, cwd="/tmp")
        else:
            proc = run_loopspy(*args, check=False, env=how.get("env"))
        assert proc.returncode == code, (code, args, proc.stderr)
        if code:
            assert len([l for l in proc.stderr.splitlines() if l.startswith("loopspy: error: ")]) == 1, proc.stderr


def test_the_rate_achieved_at_100_khz_is_stated_and_what_never_came_is_lost(tmp_path):
    """At 100 kHz perf throttles the timer (here about half the samples never come): the summary
    and the report state the rate achieved against the one requested, per second of the
    target's CPU time, and the samples that never came are counted as lost."""
    report = tmp_path / "r.json"
    proc = run_loopspy("record", "-r", 100000, "--report", report, "--recording", tmp_path / "r.lspy", "--",
                       PYTHON, "-c", "import time\ntime.sleep(1.5)\nt = time.thread_time()\n"
                       "while time.thread_time() - t < 2: pass\nprint(time.thread_time())", check=False)
    assert proc.returncode == 0, proc.stderr
    own_cpu_s = float(proc.stdout.strip().splitlines()[-1])
    summary = [l for l in proc.stderr.splitlines() if "fully symbolized" in l][0]
    recorded = int(re.search(r"loopspy: (\d+) samples", summary).group(1))
    lost = int(re.search(r"(\d+) lost \(", summary).group(1))
    never = int(re.search(r"(\d+) never delivered\)", summary).group(1))
    rate = json.loads(report.read_text())["rate"]
    assert rate["requested_hz"] == 100000
    delivered = recorded + lost - never
    # The CPU time the rate is measured by is the program's own (it sleeps while loopspy
    # attaches, then burns), to its last instant.
    cpu_s = delivered / rate["achieved_hz"]
    # The interpreter's exit, after its last reading of its clock, adds to it: under 100 kHz of
    # sampling interrupts, at times a few hundred ms.
    assert 0.97 * own_cpu_s - 0.03 <= cpu_s <= 1.25 * own_cpu_s + 0.06, (cpu_s, own_cpu_s)
    said = re.search(r"achieved (\d+) Hz of 100000 Hz requested", proc.stderr)
    assert said and abs(int(said.group(1)) - rate["achieved_hz"]) <= 1, proc.stderr
    if rate["achieved_hz"] < 95000:
        assert "warning: achieved" in proc.stderr and f"{never} samples counted as lost, never delivered" in proc.stderr
        # What never came makes up the rest of the CPU time's samples.
        assert abs(delivered + never - cpu_s * 100000) <= 0.03 * cpu_s * 100000, (delivered, never, cpu_s)
    else:
        assert "warning: achieved" not in proc.stderr
