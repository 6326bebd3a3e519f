#!/usr/bin/python3
"""Soak: loopspy records a churning service for a long time (default 60 minutes) at 1 kHz, and
its own memory and CPU are read every 10 s; both must stay flat.

The service (bench/workloads/churn_service.py) makes about 2,000 asyncio tasks and 20 threads a
second and stalls its loop for 60 ms every 5 s. loopspy attaches by pid with the default task
snapshots (10 Hz). Every interval the harness reads loopspy's RSS (VmRSS) and CPU time
(utime + stime) from /proc. Results: bench/results/soak.json (every reading), soak.svg (RSS and
CPU against time) and soak.md (the figures: RSS at the start and end, its growth per hour over
the second half, CPU share per interval, and what the recording says it kept and lost).

usage: soak.py [--minutes M] [--interval S] [--python PATH] [--loopspy PATH] [--results DIR]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = os.path.join(REPO, "bench", "workloads", "churn_service.py")
TICKS = os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s(pid):
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def slope_per_hour(points):
    """Least-squares slope of (t_s, value) points, per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 3600 * sum((t - mt) * (v - mv) for t, v in points) / den if den else 0.0


def svg(readings, path):
    w, h, pad = 720, 300, 50
    t_max = max(r["t_s"] for r in readings) or 1
    rss_max = max(r["rss_mb"] for r in readings) * 1.2 or 1
    cpu_max = max(max(r["cpu_pct"] for r in readings) * 1.2, 1)

    def line(key, top, color):
        pts = " ".join(f"{pad + (w - 2 * pad) * r['t_s'] / t_max:.1f},{h - pad - (h - 2 * pad) * r[key] / top:.1f}"
                       for r in readings)
        return f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}"/>'

    return open(path, "w").write(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">'
        f'<rect width="{w}" height="{h}" fill="white"/>'
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>'
        f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">minutes (0 to {t_max / 60:.0f})</text>'
        f'<text x="{pad}" y="{pad - 20}" fill="#1f77b4">RSS, MB (0 to {rss_max:.0f})</text>'
        f'<text x="{w - pad}" y="{pad - 20}" text-anchor="end" fill="#d62728">CPU, % of a core (0 to {cpu_max:.1f})</text>'
        + line("rss_mb", rss_max, "#1f77b4") + line("cpu_pct", cpu_max, "#d62728") + "</svg>")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--python", default="/root/.pyenv/versions/3.12.1/bin/python3")
    ap.add_argument("--loopspy", default=os.path.join(REPO, "build", "loopspy"))
    ap.add_argument("--results", default=os.path.join(REPO, "bench", "results"))
    args = ap.parse_args()
    seconds = args.minutes * 60
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    tmp = tempfile.mkdtemp(prefix="loopspy-soak-")
    ready = os.path.join(tmp, "ready")
    service = subprocess.Popen([args.python, WORKLOAD, "--seconds", str(seconds + 30), "--ready", ready],
                               stdout=subprocess.PIPE, text=True)
    while not os.path.exists(ready):
        if service.poll() is not None:
            sys.exit("soak: the service did not start")
        time.sleep(0.05)
    err = open(os.path.join(tmp, "loopspy.err"), "w+")
    rec = os.path.join(tmp, "soak.lspy")
    prof = subprocess.Popen([args.loopspy, "record", "--no-status", "-p", str(service.pid), "-d", str(seconds),
                             "-o", rec], stderr=err, stdout=subprocess.DEVNULL)
    start = time.monotonic()
    readings = []
    last_cpu, last_t = 0.0, 0.0
    while prof.poll() is None:
        time.sleep(args.interval)
        try:
            t, r, c = time.monotonic() - start, rss_kb(prof.pid), cpu_s(prof.pid)
        except (FileNotFoundError, ProcessLookupError):
            break
        if r == 0:  # exited (a zombie has no memory)
            break
        readings.append({"t_s": round(t, 1), "rss_mb": round(r / 1024, 2), "cpu_s": round(c, 2),
                         "cpu_pct": round(100 * (c - last_cpu) / (t - last_t), 2)})
        last_cpu, last_t = c, t
        print(f"soak: {t / 60:5.1f} min  RSS {r / 1024:6.1f} MB  CPU {readings[-1]['cpu_pct']:5.2f}%", flush=True)
    prof.wait()
    service.terminate()
    service.wait()
    err.seek(0)
    stderr = err.read()
    if prof.returncode != 0 or "fully symbolized" not in stderr or len(readings) < 3:
        sys.exit(f"soak: loopspy failed ({prof.returncode}):\n{stderr}")
    summary = [l for l in stderr.splitlines() if "fully symbolized" in l][0]
    half = [(r["t_s"], r["rss_mb"]) for r in readings if r["t_s"] >= seconds / 2]
    steady = [r["cpu_pct"] for r in readings[1:]]
    version = subprocess.run([args.loopspy, "--version"], capture_output=True, text=True).stdout.splitlines()
    result = {
        "started": started_at, "loopspy_version": " / ".join(version[:2]),
        "minutes": args.minutes, "interval_s": args.interval, "python": args.python,
        "loopspy": args.loopspy, "readings": readings, "summary": summary,
        "rate": next((l for l in stderr.splitlines() if "Hz requested" in l), ""),
        "snapshots": next((l for l in stderr.splitlines() if "task snapshots" in l), ""),
        "recording_bytes": os.path.getsize(rec),
        "rss_first_mb": readings[0]["rss_mb"], "rss_last_mb": readings[-1]["rss_mb"],
        "rss_max_mb": max(r["rss_mb"] for r in readings),
        "rss_growth_mb_per_hour_second_half": round(slope_per_hour(half), 2),
        "cpu_pct_median": round(statistics.median(steady), 2), "cpu_pct_max": round(max(steady), 2),
    }
    os.makedirs(args.results, exist_ok=True)
    json.dump(result, open(os.path.join(args.results, "soak.json"), "w"), indent=1)
    svg(readings, os.path.join(args.results, "soak.svg"))
    with open(os.path.join(args.results, "soak.md"), "w") as f:
        f.write(f"# Soak: {args.minutes:.0f} minutes of a churning service at 1 kHz\n\n"
                f"`bench/soak.py --minutes {args.minutes:g}`, started {started_at}, {result['loopspy_version']}: the "
                f"service makes about 2,000 tasks and 20 threads a second and stalls 60 ms every 5 s; loopspy "
                f"records it by pid.\n\n"
                f"![RSS and CPU over time](soak.svg)\n\n"
                f"- RSS: {result['rss_first_mb']} MB at the first reading, {result['rss_last_mb']} MB at the last, "
                f"{result['rss_max_mb']} MB at most; growth over the second half "
                f"{result['rss_growth_mb_per_hour_second_half']} MB per hour (least squares)\n"
                f"- CPU: median {result['cpu_pct_median']}% of a core per {args.interval:g} s interval, at most "
                f"{result['cpu_pct_max']}%\n"
                f"- recording: {result['recording_bytes'] / 1e6:.1f} MB\n"
                f"- loopspy said: `{summary}`; `{result['rate']}`; `{result['snapshots']}`\n")
    print(open(os.path.join(args.results, "soak.md")).read())


if __name__ == "__main__":
    main()
