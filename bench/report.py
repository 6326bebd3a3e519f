#!/usr/bin/python3
"""Writes the results document (BENCHMARKS.md) from the parts' result files.

run_all.py calls it at the end of a run; it can also be run alone to rebuild the document from
the results already there:

usage: report.py [--results DIR] [--out FILE]   (default bench/results, BENCHMARKS.md)
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import env  # noqa: E402
import accuracy  # noqa: E402
import bystander  # noqa: E402
import overhead  # noqa: E402
import rate_loss  # noqa: E402
import recording  # noqa: E402
import startup  # noqa: E402

SECTIONS = [
    ("overhead", overhead, "1–2. Target overhead, and the profiler's own CPU and memory"),
    ("rate_loss", rate_loss, "3. Rate and loss"),
    ("accuracy", accuracy, "4. Accuracy"),
    ("recording", recording, "5. Recording size, recorder memory, replay speed"),
    ("startup", startup, "6. Start-up"),
    ("bystander", bystander, "7. Cost where the target does not run: bystanders and timer interrupts"),
]
TARGET_ORDER = ["target overhead ≤ 0.5% at 1 kHz", "target overhead ≤ 3.0% at 10 kHz",
                "loopspy's own CPU ≤ 1% of a core at 1 kHz", "no loss below 20 kHz",
                "CPU shares within 1 point of the truth", "≤ 4 bytes per sample",
                "replay ≥ 5 million samples per second", "first sample within 200 ms",
                "a bystander keeps ≥ 0.99 of its speed (loopspy)", "a bystander keeps ≥ 0.99 of its speed (loopspy-per-thread)",
                "idle target: < 2% of rate × CPUs extra timer interrupts (loopspy)",
                "idle target: < 2% of rate × CPUs extra timer interrupts (loopspy-per-thread)"]


def load(results):
    found = {}
    for part, _, _ in SECTIONS:
        path = os.path.join(results, part + ".json")
        if os.path.exists(path):
            with open(path) as f:
                found[part] = json.load(f)
    return found


def write(results, out, run=None):
    run_path = os.path.join(results, "run.json")
    if run is not None:
        with open(run_path, "w") as f:
            json.dump(run, f, indent=1)
    elif os.path.exists(run_path):
        with open(run_path) as f:
            run = json.load(f)
    data = load(results)
    if not data:
        sys.exit(f"report: no results in {results}")
    text = render(data, run or {}, os.path.relpath(results, env.REPO))
    with open(out + ".tmp", "w") as f:
        f.write(text)
    os.replace(out + ".tmp", out)


def check_one_run(data, run):
    """The document is one run of the suite by one binary: refuse anything else."""
    ids = {d.get("run_id") for d in data.values()}
    shas = {d["loopspy"]["sha256"] for d in data.values()}
    if None in ids or len(ids) != 1 or (run.get("run_id") and ids != {run["run_id"]}):
        sys.exit(f"report: the parts' results come from different runs ({', '.join(sorted(map(str, ids)))}); "
                 "run the whole suite (scripts/bench.sh) to write the document")
    if len(shas) != 1 or (run.get("loopspy") and shas != {run["loopspy"]["sha256"]}):
        sys.exit(f"report: the parts measured different loopspy binaries ({', '.join(sorted(shas))})")


def render(data, run, results_rel):
    check_one_run(data, run)
    any_part = next(iter(data.values()))
    quick = any(d.get("quick") for d in data.values())
    m = any_part["machine"]
    lines = ["# loopspy benchmarks", ""]
    if quick:
        lines += ["> **Preliminary: smoke-run figures (`--quick`), not the benchmark.** Each part ran once or twice, "
                  "with short windows, on a machine that was busy with other work (see *Noise* under each table). "
                  "They show that the suite runs and what it reports; the figures themselves are not to be "
                  "trusted. `scripts/bench.sh` on a quiet machine replaces this file with the real run.", ""]
    started = run.get("started") or min(d["started"] for d in data.values())
    lines += [f"Produced by `{run.get('command', 'scripts/bench.sh')}` on {started}"
              + (f" ({run['minutes']} min)" if run.get("minutes") else "")
              + f"; raw data in `{results_rel}/` (one JSON file per part, every run in it). Re-running "
              "`scripts/bench.sh` regenerates this file.", "",
              "## Machine and software", "",
              f"- CPU: {m['cpu']}, {m['cpus']} CPUs online, {m['memory']}; {m['os']}, kernel {m['kernel']}"
              + (f", virtualization: {m['virtualization']}" if m.get("virtualization") else "")
              + f"; kernel.perf_event_max_sample_rate = {m.get('perf_event_max_sample_rate')}"]
    lb = run.get("loopspy") or any_part["loopspy"]
    lines.append(f"- loopspy: {lb['version']}, `{lb['path']}` built {lb['built']}, sha256 {lb['sha256']}…, "
                 f"source tree when the suite ran: {lb['source']}")
    lines.append(f"- every section below is from this one run (`{any_part['run_id']}`) of this one binary")
    pys = sorted({f"`{d['python']['path']}` (Python {d['python']['version']})" for d in data.values()})
    lines.append(f"- target interpreter (and profiling.sampling's): {', '.join(pys)}")
    lines.append("- nothing is pinned to a CPU: the target, the profiler and the harness share the machine, as "
                 "they would in production")
    lines.append("")

    targets, sections = [], []
    for part, module, title in SECTIONS:
        if part not in data:
            continue
        body, t = module.render(data[part])
        targets += t
        d = data[part]
        sections += [f"## {title}", "", f"`bench/{part}.py`, {d['started']} to {d.get('finished', '?')}"
                     + (" (quick)" if d.get("quick") else "") + ".", ""] + body + [""]
    order = {name: i for i, name in enumerate(TARGET_ORDER)}
    targets.sort(key=lambda t: order.get(t[0], len(order)))
    lines += ["## Targets of the issue", "",
              "The goals, not test thresholds. *Met* compares the median (for the first sample and CPU shares: "
              "the worst run) with the goal.", "",
              "| target | met | measured |", "|---|---|---|"]
    for name, met, detail in targets:
        verdict = "–" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {name} | {verdict} | {detail} |")
    missing = [p for p, _, _ in SECTIONS if p not in data]
    if missing:
        lines.append("")
        lines.append(f"Not measured in this run: {', '.join(missing)}.")
    lines += [""] + sections
    # The soak is an hour of its own (bench/soak.py), not part of the suite's run: its section says so.
    soak = os.path.join(env.REPO, results_rel, "soak.md")
    if os.path.exists(soak):
        body = open(soak).read().split("\n", 1)[1].strip()
        lines += ["## 8. Soak: an hour of a churning service (its own run)", "",
                  "Not from the run above: `bench/soak.py` on its own, with its own binary and date "
                  f"(in `{results_rel}/soak.json`).", "", body.replace("(soak.svg)", f"({results_rel}/soak.svg)"), ""]
    lines += ["## Method", "",
              "- One command: `scripts/bench.sh` (builds `build/loopspy` with scripts/build.sh, then runs "
              "`bench/run_all.py`); `scripts/bench.sh --quick` is a ~2-minute smoke of every part "
              "(results in bench/results/quick/). Each part also runs alone: `bench/PART.py --help`.",
              "- Ratios come from one run of the suite, never from absolute times across runs: every profiled run "
              "of the overhead part is divided by the runs alone interleaved beside it (B P B P … B).",
              "- Each figure is given as median [min–max] over its runs, with the number of runs, and each table "
              "says how much CPU other processes used meanwhile. Before each run the harness waits (bounded) for "
              "a quiet machine (other processes under 0.25 cores, none holding perf events or BPF links) and "
              "repeats a disturbed run (bounded); runs kept although disturbed are counted.",
              "- Every run is bounded in time and ends by itself; the suite fails (non-zero exit, one line saying "
              "why, no document) if a workload, loopspy or a peer fails, prints no summary or records nothing.",
              "- The harness polls the processes it measures (exit, CPU time) every 5 ms, about 1% of a core "
              "while a window runs; it decodes recordings and writes results between runs.",
              "- profiling.sampling runs through `bench/lib/sampling_launcher.py`, which runs it unchanged but "
              "writes the time its sampling loop starts: that is when the harness considers it attached.",
              "- profiling.sampling (Python 3.15's sampling profiler) attaches only to its own Python version, so "
              "every workload runs on the Debian-sid 3.15 interpreter installed by `scripts/setup.sh --test`.",
              "- These are benchmarks, not tests: `.ci/run` does not run them.", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=env.RESULTS)
    ap.add_argument("--out", default=os.path.join(env.REPO, "BENCHMARKS.md"))
    a = ap.parse_args()
    write(a.results, a.out)
    print(f"report: wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
