"""The facts a result needs (machine, binary, interpreter, command, date), the options every part
shares, and the run harness (scratch directory, cleanup, one-line failures)."""
import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

from . import procs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(REPO, "bench", "results")
SID_315 = os.path.expanduser("~/.cache/loopspy/pythons/3.15/python")


def add_common_args(ap, quiet_budget_full=30.0, quiet_budget_quick=5.0):
    ap.add_argument("--quick", action="store_true", help="a smoke run: fewer, shorter runs")
    ap.add_argument("--loopspy", default=os.path.join(REPO, "build", "loopspy"), help="the loopspy binary")
    ap.add_argument("--python", default=SID_315,
                    help="the target interpreter (profiling.sampling runs on it too, so it must be 3.15+)")
    ap.add_argument("--out", help="result JSON (default bench/results[/quick]/PART.json)")
    ap.add_argument("--quiet", type=float, default=0.25,
                    help="a run during which other processes used more cores than this is repeated")
    ap.add_argument("--quiet-budget", type=float,
                    help=f"seconds to spend waiting for quiet and repeating disturbed runs "
                         f"(default {quiet_budget_full:g}, quick {quiet_budget_quick:g})")
    ap.set_defaults(_qb=(quiet_budget_full, quiet_budget_quick))


def finish_args(cfg, part):
    if cfg.quiet_budget is None:
        cfg.quiet_budget = cfg._qb[1] if cfg.quick else cfg._qb[0]
    if cfg.out is None:
        cfg.out = os.path.join(RESULTS, "quick" if cfg.quick else "", part + ".json")
    cfg.part = part
    return cfg


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1048576:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": model, "cpus": os.cpu_count(), "kernel": platform.release(), "memory": mem,
            "os": _os_name(), "hostname": platform.node(),
            "perf_event_max_sample_rate": _read("/proc/sys/kernel/perf_event_max_sample_rate"),
            "virtualization": _virt()}


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _virt():
    try:
        p = subprocess.run(["systemd-detect-virt"], capture_output=True, text=True, timeout=5)
        return p.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def _os_name():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def git_facts():
    def git(*args):
        try:
            return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = [l for l in git("status", "--porcelain", "--untracked-files=no").splitlines() if l.strip()]
    return head + (f" + uncommitted changes in {len(dirty)} tracked files" if dirty else " (clean)")


def snapshot_loopspy(path, tmp):
    """Copies the binary so a rebuild during the run cannot change what is measured."""
    if not os.access(path, os.X_OK):
        raise procs.BenchError(f"no loopspy binary at {path} (run scripts/build.sh)")
    snap = os.path.join(tmp, "loopspy")
    shutil.copy2(path, snap)
    with open(snap, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    v = subprocess.run([snap, "-V"], capture_output=True, text=True, timeout=10)
    if v.returncode != 0:
        raise procs.BenchError(f"{path} -V failed: {v.stderr.strip()}")
    mtime = datetime.datetime.fromtimestamp(os.stat(path).st_mtime).isoformat(timespec="seconds")
    return snap, {"version": v.stdout.strip(), "path": path, "built": mtime, "sha256": digest,
                  "source": git_facts()}


def python_facts(python, need_sampling=False):
    if not os.access(python, os.X_OK):
        raise procs.BenchError(f"no interpreter at {python} (scripts/setup.sh --test installs the sid 3.15 one)")
    code = "import sys; print(sys.version.split()[0])"
    if need_sampling:
        code += "; import profiling.sampling"
    p = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        what = "profiling.sampling is not available" if need_sampling else "it does not run"
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        raise procs.BenchError(f"{python}: {what}" + (" (it needs Python 3.15+)" if need_sampling else "") + f": {last}")
    return {"path": python, "version": p.stdout.strip()}


def now():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def write_result(cfg, data):
    os.makedirs(os.path.dirname(os.path.abspath(cfg.out)), exist_ok=True)
    tmp = cfg.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, default=str)
    os.replace(tmp, cfg.out)
    print(f"{cfg.part}: wrote {cfg.out}", file=sys.stderr)


def base_result(cfg, binary_facts, python_facts_):
    return {"part": cfg.part, "quick": cfg.quick, "run_id": os.environ.get("LOOPSPY_BENCH_RUN"),
            "command": " ".join([sys.executable] + sys.argv),
            "started": now(), "machine": machine(), "loopspy": binary_facts, "python": python_facts_}


def main(part, describe, add_args, run):
    """The harness of one part: parses options, makes a scratch directory and a snapshot of the
    binary, calls run(cfg, tmp, binary, binary_facts) -> result dict, writes it; any failure is
    one line and exit status 1, and every process started is ended."""
    ap = argparse.ArgumentParser(description=describe)
    add_args(ap)
    cfg = finish_args(ap.parse_args(), part)
    if os.geteuid() != 0:
        print(f"{part}: FAILED: loopspy needs root", file=sys.stderr)
        sys.exit(1)
    tmp = tempfile.mkdtemp(prefix=f"loopspy-bench-{part}-")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)  # run_all stops a part that overruns with SIGTERM
    try:
        binary, facts = snapshot_loopspy(cfg.loopspy, tmp)
        result = run(cfg, tmp, binary, facts)
        result["finished"] = now()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        result["harness_cpu_s"] = round(ru.ru_utime + ru.ru_stime, 2)
        write_result(cfg, result)
    except procs.BenchError as e:
        procs.kill_children()
        print(f"{part}: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        procs.kill_children()
        print(f"{part}: interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        procs.kill_children()
        shutil.rmtree(tmp, ignore_errors=True)


def progress(part, msg):
    print(f"[{part}] {msg}", file=sys.stderr, flush=True)
