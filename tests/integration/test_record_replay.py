"""Users record in production and analyse later, elsewhere: a recording replays into every output,
the same as a live run, and survives the recorder being killed."""
import json
import os
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
    if how != "duration":
        time.sleep(1.5)
        p.send_signal(getattr(signal, how))
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    out = run_loopspy("replay", rec).stdout
    assert ("complete (signal)" if how != "duration" else "complete (duration)") in out, out


def test_a_killed_recorder_loses_at_most_the_last_second(tmp_path, spawn):
    ready = tmp_path / "ready"
    workload = spawn([interpreter("pyenv-3.12"), WORKLOADS / "cpu_shares.py", "--seconds", "20",
                      "--truth", tmp_path / "t.json", "--ready", ready])
    wait_for_file(ready, proc=workload)
    rec, collapsed = tmp_path / "run.lspy", tmp_path / "c.txt"
    p = subprocess.Popen([LOOPSPY, "record", "-p", str(workload.pid), "-o", str(rec)], stderr=subprocess.DEVNULL)
    time.sleep(4.5)
    p.kill()
    p.wait()
    rp = run_loopspy("replay", rec, "--mode", "cpu", "--collapsed", collapsed)
    assert "cut short" in rp.stderr, rp.stderr
    recorded_s = sum(w for _, w in parse_collapsed(collapsed)) / 1e6
    # ~4.5 s of a busy thread were sampled (less start-up); at most the last second is lost.
    assert 3.0 <= recorded_s <= 4.6, recorded_s


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
    cut = tmp_path / "cut.lspy"
    cut.write_bytes(data[: len(data) * 2 // 3])
    rp = run_loopspy("replay", cut, "--collapsed", tmp_path / "c.txt")
    assert "warning" in rp.stderr and "cut short" in rp.stderr
    assert parse_collapsed(tmp_path / "c.txt")
    flipped = bytearray(data)
    flipped[len(data) * 3 // 4] ^= 0xFF
    bad = tmp_path / "flipped.lspy"
    bad.write_bytes(bytes(flipped))
    rp = run_loopspy("replay", bad, "--collapsed", tmp_path / "d.txt", check=False)
    assert rp.returncode == 0 and "warning" in rp.stderr, rp.stderr


def test_a_full_disk_is_a_clear_error_and_what_was_written_stays_readable(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        rec = disk / "run.lspy"
        proc = run_loopspy("record", "-o", rec, "-d", 30, "--", interpreter("pyenv-3.12"), WORKLOADS / "shapes.py",
                           "deep", "--seconds", 30, check=False, timeout=60)
        assert proc.returncode != 0
        errors = [l for l in proc.stderr.splitlines() if l.startswith("loopspy: error: ")]
        assert len(errors) == 1 and "No space left on device" in errors[0], proc.stderr
        rp = run_loopspy("replay", rec, "--collapsed", tmp_path / "c.txt", check=False)
        assert rp.returncode == 0, rp.stderr
        assert parse_collapsed(tmp_path / "c.txt")
    finally:
        subprocess.run(["umount", str(disk)])
