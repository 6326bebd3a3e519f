"""Users record in production and analyse later, elsewhere: a recording replays into every output,
the same as a live run, and survives the recorder being killed."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import LOOPSPY, WORKLOADS, interpreter, parse_collapsed, run_loopspy, wait_for_file

STALLS = WORKLOADS / "stalls.py"
OUTPUT_FLAGS = ("--collapsed", "--flamegraph", "--report")


def outputs(tmp_path, prefix):
    return {flag: tmp_path / f"{prefix}{flag.strip('-')}" for flag in OUTPUT_FLAGS}


def flags(files):
    return [x for flag, path in files.items() for x in (flag, path)]


def test_replay_gives_exactly_what_record_gave(tmp_path):
    rec = tmp_path / "run.lspy"
    live = outputs(tmp_path, "live-")
    proc = run_loopspy("record", "-o", rec, "--threshold", 20, "--slow-callbacks", *flags(live), "--",
                       interpreter("pyenv-3.12"), STALLS, "--truth", tmp_path / "truth.json", "--rounds", 1)
    assert f"wrote recording to {rec}" in proc.stderr
    for attempt in ("a", "b"):
        again = outputs(tmp_path, f"replay-{attempt}-")
        rp = run_loopspy("replay", rec, "--threshold", 20, "--slow-callbacks", *flags(again))
        assert rp.stdout == proc.stdout  # the slow-callback table
        for flag in OUTPUT_FLAGS:
            assert again[flag].read_bytes() == live[flag].read_bytes(), flag
    report = json.loads(live["--report"].read_text())
    assert len(report["slow_callbacks"]) == 4


def test_replay_with_other_thresholds_modes_and_windows(tmp_path):
    rec = tmp_path / "run.lspy"
    run_loopspy("record", "-o", rec, "--", interpreter("pyenv-3.12"), STALLS, "--truth", tmp_path / "t.json",
                "--rounds", 1)
    def slow(*extra):
        out = tmp_path / "r.json"
        run_loopspy("replay", rec, "--report", out, *extra)
        return json.loads(out.read_text())["slow_callbacks"]
    assert len(slow()) == 4                          # the default 100 ms
    assert len(slow("--threshold", 250)) == 1        # only the 300 ms sleep
    everything = slow("--threshold", 100)
    first = min(cb["start_ms"] for cb in everything) / 1000
    assert len(slow("--to", first + 0.05)) == 1      # a window that holds only the first stall
    cpu, wall = tmp_path / "cpu.txt", tmp_path / "wall.txt"
    run_loopspy("replay", rec, "--mode", "cpu", "--collapsed", cpu)
    run_loopspy("replay", rec, "--mode", "wall", "--collapsed", wall)
    assert not any(f[-1].startswith("<off-CPU") for f, _ in parse_collapsed(cpu))
    assert any(f[1:] == ["<idle>"] for f, _ in parse_collapsed(wall))


def test_replay_without_outputs_prints_a_summary(tmp_path):
    rec = tmp_path / "run.lspy"
    run_loopspy("record", "-o", rec, "--", interpreter("pyenv-3.12"), STALLS, "--truth", tmp_path / "t.json",
                "--rounds", 1)
    out = run_loopspy("replay", rec).stdout
    assert "python:        3.12.1" in out
    assert "complete (target exited)" in out
    assert "loop threads:" in out and "none found" not in out
    assert "blocking_handler" in out


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "duration"])
def test_every_ending_leaves_a_complete_recording(how, tmp_path, spawn):
    ready = tmp_path / "ready"
    workload = spawn([interpreter("pyenv-3.12"), WORKLOADS / "cpu_shares.py", "--seconds", "20",
                      "--truth", tmp_path / "t.json", "--ready", ready])
    wait_for_file(ready, proc=workload)
    rec = tmp_path / "run.lspy"
    cmd = [LOOPSPY, "record", "-p", str(workload.pid), "-o", str(rec)] + (["-d", "1.5"] if how == "duration" else [])
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    started = wait_until_recording(p)
    if how != "duration":
        time.sleep(1.5)
        p.send_signal(getattr(signal, how))
    err = started + p.communicate(timeout=30)[1]
    assert p.returncode == 0, err
    out = run_loopspy("replay", rec).stdout
    assert ("complete (signal)" if how != "duration" else "complete (duration)") in out, out


def test_a_killed_recorder_loses_at_most_the_last_second(tmp_path, spawn):
    ready = tmp_path / "ready"
    workload = spawn([interpreter("pyenv-3.12"), WORKLOADS / "cpu_shares.py", "--seconds", "20",
                      "--truth", tmp_path / "t.json", "--ready", ready])
    wait_for_file(ready, proc=workload)
    rec, collapsed = tmp_path / "run.lspy", tmp_path / "c.txt"
    p = subprocess.Popen([LOOPSPY, "record", "-p", str(workload.pid), "-o", str(rec)], stderr=subprocess.PIPE, text=True)
    wait_until_recording(p)
    sampling_since = time.monotonic()
    time.sleep(3.5)
    p.kill()
    sampled_s = time.monotonic() - sampling_since
    p.communicate(timeout=30)
    rp = run_loopspy("replay", rec, "--mode", "cpu", "--collapsed", collapsed)
    replays_up_to = cut_short_at(rp.stderr)
    recorded_s = sum(w for _, w in parse_collapsed(collapsed)) / 1e6
    # A busy thread was sampled from the recorder's first line to the kill; at most the last
    # second (one flush period) is lost, and what is there is what the warning says.
    assert sampled_s - 1.1 <= recorded_s <= sampled_s + 0.1, (recorded_s, sampled_s)
    assert abs(recorded_s - replays_up_to) <= 0.15, (recorded_s, replays_up_to)


def wait_until_recording(p, timeout=30):
    """Reads the recorder's stderr up to its first line, printed once the kernel side is
    attached and sampling; returns what it read."""
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            raise AssertionError(f"the recorder exited before it started: {seen}")
        seen += line
        if line.startswith("loopspy: recording pid "):
            return seen
    raise AssertionError(f"the recorder did not start: {seen}")


def cut_short_at(stderr):
    """The seconds a damaged recording replays up to, from its one warning line."""
    warnings = [l for l in stderr.splitlines() if l.startswith("loopspy: warning: ")]
    assert len(warnings) == 1, stderr
    m = re.search(r"it replays up to ([\d.]+) s$", warnings[0])
    assert m, warnings[0]
    return float(m.group(1))


def assert_bad_recording(path, *fragments, code=2):
    proc = run_loopspy("replay", path, check=False, timeout=30)
    assert proc.returncode == code, proc.stderr
    err = [l for l in proc.stderr.splitlines() if l.startswith("loopspy: error: ")]
    assert len(err) == 1, proc.stderr
    for f in fragments:
        assert f in err[0], err[0]


def test_bad_recordings_get_one_line_errors(tmp_path):
    empty = tmp_path / "empty.lspy"
    empty.write_bytes(b"")
    assert_bad_recording(empty, "empty")
    other = tmp_path / "other.lspy"
    other.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    assert_bad_recording(other, "not a loopspy recording")
    assert_bad_recording(tmp_path / "missing.lspy", "missing.lspy", "No such file", code=1)


def test_damaged_recordings_replay_up_to_the_damage(tmp_path):
    rec = tmp_path / "run.lspy"
    run_loopspy("record", "-o", rec, "--", interpreter("pyenv-3.12"), WORKLOADS / "cpu_shares.py",
                "--seconds", 3, "--truth", tmp_path / "t.json")
    data = rec.read_bytes()
    run_loopspy("replay", rec, "--mode", "cpu", "--collapsed", tmp_path / "full.txt")
    full_s = sum(w for _, w in parse_collapsed(tmp_path / "full.txt")) / 1e6
    cut = tmp_path / "cut.lspy"
    cut.write_bytes(data[: len(data) * 2 // 3])
    rp = run_loopspy("replay", cut, "--mode", "cpu", "--collapsed", tmp_path / "c.txt")
    assert "loopspy: warning: recording cut short: the last " in rp.stderr, rp.stderr
    cut_s = sum(w for _, w in parse_collapsed(tmp_path / "c.txt")) / 1e6
    # The busy loop thread's samples up to the point the warning names, and no further.
    assert 0.3 * full_s < cut_s < full_s, (cut_s, full_s)
    assert abs(cut_s - cut_short_at(rp.stderr)) <= 0.15, (cut_s, rp.stderr)
    flipped = bytearray(data)
    flipped[len(data) * 3 // 4] ^= 0xFF
    bad = tmp_path / "flipped.lspy"
    bad.write_bytes(bytes(flipped))
    rp = run_loopspy("replay", bad, "--mode", "cpu", "--collapsed", tmp_path / "d.txt", check=False)
    assert rp.returncode == 0, rp.stderr
    # The flipped byte lies in a chunk's body or in its header: either is named as damage.
    assert re.search(r"loopspy: warning: recording damaged: (a bad checksum in the \w+ chunk|a damaged chunk header) "
                     r"at byte \d+", rp.stderr), rp.stderr
    flipped_s = sum(w for _, w in parse_collapsed(tmp_path / "d.txt")) / 1e6
    assert 0.3 * full_s < flipped_s < full_s and abs(flipped_s - cut_short_at(rp.stderr)) <= 0.15


def test_a_full_disk_is_a_clear_error_and_what_was_written_stays_readable(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(disk)]).returncode != 0:
        pytest.fail("cannot mount a small tmpfs (the tests run as root)")
    try:
        rec = disk / "run.lspy"
        proc = run_loopspy("record", "-o", rec, "-d", 30, "--", interpreter("pyenv-3.12"), WORKLOADS / "shapes.py",
                           "deep", "--seconds", 30, check=False, timeout=60)
        assert proc.returncode == 1, proc.stderr  # "anything else", as the README says
        errors = [l for l in proc.stderr.splitlines() if l.startswith("loopspy: error: ")]
        assert len(errors) == 1 and "No space left on device" in errors[0], proc.stderr
        rp = run_loopspy("replay", rec, "--mode", "cpu", "--collapsed", tmp_path / "c.txt", check=False)
        assert rp.returncode == 0, rp.stderr
        # What reached the disk replays: the samples up to the point the warning names. The
        # workload is one thread burning CPU, so its CPU time is that span but for what a busy
        # machine took from it (CI: 0.3 s of 18 s), and never more.
        recorded_s = sum(w for _, w in parse_collapsed(tmp_path / "c.txt")) / 1e6
        cut = cut_short_at(rp.stderr)
        assert 0.9 * cut - 0.1 <= recorded_s <= cut + 0.05, (recorded_s, rp.stderr)
    finally:
        subprocess.run(["umount", str(disk)])


def test_a_recording_of_a_busy_loop_costs_a_few_bytes_a_sample(tmp_path):
    """A real recording, string tables, stacks and selector waits included (BENCHMARKS.md measures
    5.6 bytes a sample over 10 minutes; a short one carries its tables over fewer samples, and a
    launched one records the interpreter's start too: the stacks and names of every import)."""
    rec = tmp_path / "run.lspy"
    proc = run_loopspy("record", "--no-status", "-o", rec, "--", interpreter("pyenv-3.12"), WORKLOADS / "cpu_shares.py",
                       "--seconds", 4, "--truth", tmp_path / "t.json")
    size = rec.stat().st_size
    assert f"wrote recording to {rec} ({size} bytes)" in proc.stderr
    samples = int(re.search(r"samples:\s+(\d+) on-CPU", run_loopspy("replay", rec).stdout).group(1))
    assert samples > 3000
    assert size / samples <= 8.0, (size, samples)
