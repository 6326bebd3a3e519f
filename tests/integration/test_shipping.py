"""What a user installs: one self-contained binary that runs from an empty root, a .deb that
installs and removes cleanly with its man page, and `doctor` telling what this machine gives."""
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from conftest import LOOPSPY, WORKLOADS, interpreter, run_loopspy, wait_for_file

BUILD = pathlib.Path(LOOPSPY).parent


def test_the_binary_needs_no_library_and_records_from_an_empty_root(tmp_path, spawn):
    """A root holding only the binary (and /proc, /sys, /tmp mounted in): loopspy profiles a
    Python outside it by pid, its interpreter found through /proc/PID/root."""
    assert "statically linked" in subprocess.run(["file", "-L", LOOPSPY], capture_output=True, text=True).stdout
    root, out = tmp_path / "root", tmp_path / "out"
    for d in ("proc", "sys", "tmp"):
        (root / d).mkdir(parents=True)
    out.mkdir()
    shutil.copy(LOOPSPY, root / "loopspy")
    assert sorted(p.name for p in root.iterdir()) == ["loopspy", "proc", "sys", "tmp"]
    truth, ready = tmp_path / "truth.json", tmp_path / "ready"
    target = spawn([interpreter("pyenv-3.12"), WORKLOADS / "stalls.py", "--truth", truth, "--ready", ready,
                    "--rounds", "3"])
    wait_for_file(ready, proc=target)
    script = (f"mount --rbind /proc {root}/proc && mount --rbind /sys {root}/sys && mount --bind {out} {root}/tmp && "
              f"exec chroot {root} /loopspy record -p {target.pid} -d 3 -o /tmp/flame.svg --recording /tmp/r.lspy")
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    svg = (out / "flame.svg").read_text()
    assert "blocking_handler" in svg and "cpu_handler" in svg, proc.stderr
    assert "loopspy: error" not in proc.stderr


def test_version_says_what_was_built_and_what_it_uses():
    lines = run_loopspy("--version").stdout.splitlines()
    declared = re.search(r"project\(loopspy VERSION (\S+)", (BUILD.parent / "CMakeLists.txt").read_text())
    assert lines[0] == f"loopspy {declared.group(1)}" if declared else lines[0].startswith("loopspy ")
    assert re.match(r"commit [0-9a-f]{7,}(-dirty)?, built \d{4}-\d\d-\d\d$", lines[1]), lines
    assert re.match(r"libbpf v\d+\.\d+ \(linked in\)$", lines[2]), lines
    assert "ring buffer" in lines[3] and "bpf_loop" in lines[3] and "loopspy doctor" in lines[3]


@pytest.fixture
def deb(tmp_path):
    """The .deb, made by CPack from the build the tests run."""
    out = tmp_path / "pkg"
    subprocess.run(["cpack", "--config", BUILD / "CPackConfig.cmake", "-B", out], capture_output=True, text=True,
                   check=True, timeout=300)
    debs = list(out.glob("loopspy_*_amd64.deb"))
    assert len(debs) == 1, list(out.iterdir())
    return debs[0]


def test_the_deb_installs_the_binary_its_man_page_and_completion_and_removes_them(deb):
    info = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Version", "Architecture"], capture_output=True,
                          text=True, check=True).stdout
    assert "Package: loopspy" in info and "Architecture: amd64" in info
    assert re.match(r"loopspy_\d+\.\d+\.\d+_amd64\.deb$", deb.name)
    if subprocess.run(["dpkg-query", "-W", "loopspy"], capture_output=True).returncode == 0:
        pytest.fail("a loopspy package is installed on this machine already: not touching it")
    files = ["/usr/bin/loopspy", "/usr/share/man/man1/loopspy.1", "/usr/share/bash-completion/completions/loopspy"]
    try:
        subprocess.run(["dpkg", "-i", deb], capture_output=True, text=True, check=True, timeout=120)
        version = subprocess.run(["/usr/bin/loopspy", "--version"], capture_output=True, text=True, check=True).stdout
        assert version.startswith("loopspy ")
        page = subprocess.run(["man", "-l", files[1]], capture_output=True, text=True, check=True,
                              env={**os.environ, "MANWIDTH": "100", "MAN_KEEP_FORMATTING": ""}).stdout
        # The man page is --help's text: every subcommand and every flag record's help names.
        for sub in ("RECORD", "TOP", "REPLAY", "DUMP", "DOCTOR", "EXIT STATUS"):
            assert sub in page, sub
        record_help = run_loopspy("record", "--help").stdout
        for flag in re.findall(r"^  (?:-\w,)?(--[\w-]+)", record_help, re.M):
            assert flag in page, flag
        completion = pathlib.Path(files[2]).read_text()
        assert "--slow-callbacks" in completion and "complete -o filenames -F _loopspy loopspy" in completion
        assert subprocess.run(["bash", "-n", files[2]]).returncode == 0
    finally:
        subprocess.run(["dpkg", "-r", "loopspy"], capture_output=True, text=True, timeout=120)
    assert subprocess.run(["dpkg-query", "-W", "loopspy"], capture_output=True).returncode != 0 or \
        "deinstall" in subprocess.run(["dpkg-query", "-W", "-f=${Status}", "loopspy"], capture_output=True,
                                      text=True).stdout
    for f in files:
        assert not os.path.exists(f), f


def bpftool_says(feature_line):
    out = subprocess.run(["bpftool", "feature", "probe", "kernel"], capture_output=True, text=True).stdout
    return feature_line in out


def doctor_rows(stdout):
    return {m.group(1).strip(): m.group(2) for m in re.finditer(r"^  (.+?)\s+(yes|no)\b", stdout, re.M)}


def test_doctor_reports_this_machines_features_as_bpftool_finds_them():
    proc = run_loopspy("doctor")
    rows = doctor_rows(proc.stdout)
    assert rows["BPF ring buffer"] == ("yes" if bpftool_says("map_type ringbuf is available") else "no")
    assert rows["bpf_loop helper (the frame walk)"] == ("yes" if bpftool_says("- bpf_loop") else "no")
    assert rows["kernel BTF file (/sys/kernel/btf/vmlinux)"] == ("yes" if os.path.exists("/sys/kernel/btf/vmlinux") else "no")
    assert rows["privilege (root, or CAP_BPF+PERFMON+SYS_PTRACE)"] == "yes"  # the tests run as root
    assert proc.stdout.rstrip().endswith("loopspy can record here (the fallbacks above, where a line says no)")


def test_a_feature_forced_off_is_reported_missing_and_record_refuses_cleanly(tmp_path):
    env = {**os.environ, "LOOPSPY_DISABLE_FEATURES": "bpf_loop"}
    proc = run_loopspy("doctor", check=False, env=env)
    assert proc.returncode == 1
    assert re.search(r"^  bpf_loop helper \(the frame walk\)\s+no\s+disabled by LOOPSPY_DISABLE_FEATURES", proc.stdout, re.M)
    assert proc.stdout.rstrip().endswith("loopspy cannot record here: see the lines that say no")
    marker = tmp_path / "ran"
    rec = run_loopspy("record", "--", "/usr/bin/python3.11", "-c", f"open({str(marker)!r}, 'w')", check=False, env=env)
    assert rec.returncode == 7, rec.stderr
    assert rec.stderr.strip().splitlines() == [
        "loopspy: error: this kernel lacks the bpf_loop helper (the frame walk) (Linux 5.17): disabled by "
        "LOOPSPY_DISABLE_FEATURES; `loopspy doctor` shows what it has"]
    assert not marker.exists()
    # An optional one falls back: without fentry the selector waits come through the syscall tracepoints.
    env = {**os.environ, "LOOPSPY_DISABLE_FEATURES": "fentry,tp_btf"}
    rows = doctor_rows(run_loopspy("doctor", env=env).stdout)
    assert rows["selector waits through fentry/fexit"] == "no" and rows["sched_switch, fork, exec through tp_btf"] == "no"
