"""A user opens a loopspy profile in the viewers they already have: speedscope (its own format,
a timeline per thread), go tool pprof (what Pyroscope, Parca and Grafana ingest), and py-spy's
habit of `-o profile.svg` / `-f FORMAT -o FILE`. Every check is against the workload's own clock
(stalls.py's truth) or against loopspy's collapsed stacks of the same recording."""
import gzip
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from conftest import WORKLOADS, frame_name, interpreter, parse_collapsed, run_loopspy

STALLS = WORKLOADS / "stalls.py"
NPM_PREFIX = pathlib.Path(os.environ.get("LOOPSPY_NPM_PREFIX", pathlib.Path.home() / ".cache/loopspy-test/npm"))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One recording of stalls.py (two sleeps, two burns, each timed by the program itself)."""
    d = tmp_path_factory.mktemp("outputs")
    truth = d / "truth.json"
    proc = run_loopspy("record", "--no-status", "-o", d / "profile.svg", "--recording", d / "r.lspy", "--",
                       interpreter("pyenv-3.12"), STALLS, "--truth", truth)
    return d, json.loads(truth.read_text()), proc


def test_o_with_an_svg_name_writes_a_flame_graph_and_the_recording_goes_elsewhere(recorded):
    d, _, proc = recorded
    svg = (d / "profile.svg").read_text()
    assert svg.lstrip().startswith(("<?xml", "<svg")) and "blocking_handler" in svg
    assert (d / "r.lspy").read_bytes()[:4] != svg.encode()[:4]
    assert f"wrote recording to {d / 'r.lspy'}" in proc.stderr
    # Replayed, the recording is the same profile.
    run_loopspy("replay", d / "r.lspy", "-o", d / "again.svg")
    assert "blocking_handler" in (d / "again.svg").read_text()


def test_format_flag_and_extensions_choose_the_format_and_an_unknown_one_is_refused(recorded, tmp_path):
    d, _, _ = recorded
    run_loopspy("replay", d / "r.lspy", "-f", "speedscope", "-o", tmp_path / "x.data")
    assert json.loads((tmp_path / "x.data").read_text())["$schema"].endswith("file-format-schema.json")
    run_loopspy("replay", d / "r.lspy", "-o", tmp_path / "x.json")
    assert "profiles" in json.loads((tmp_path / "x.json").read_text())
    run_loopspy("replay", d / "r.lspy", "-o", tmp_path / "x.txt")
    assert parse_collapsed(tmp_path / "x.txt")
    run_loopspy("replay", d / "r.lspy", "-o", tmp_path / "x.pb.gz")
    assert gzip.decompress((tmp_path / "x.pb.gz").read_bytes())
    for bad in (["-o", tmp_path / "x.foo"], ["-f", "nope", "-o", tmp_path / "y.json"], ["-f", "pprof"]):
        proc = run_loopspy("replay", d / "r.lspy", *bad, check=False)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("loopspy: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "x.foo").exists()


def speedscope_schema():
    for p in NPM_PREFIX.glob("node_modules/speedscope/**/file-format-schema.json"):
        return json.loads(p.read_text())
    raise AssertionError(f"speedscope's schema is not under {NPM_PREFIX}: run scripts/setup.sh --test")


def open_intervals(profile, frames):
    """(frame name, open at, closed at, names of the frames under it) for every frame opened."""
    stack, out = [], []
    last = profile["startValue"]
    for e in profile["events"]:
        assert e["at"] >= last, "events out of time order"
        last = e["at"]
        if e["type"] == "O":
            stack.append((e["frame"], e["at"]))
        else:
            frame, opened = stack.pop()
            assert frame == e["frame"], "a frame closed out of order"
            out.append((frames[frame]["name"], opened, e["at"], [frames[f]["name"] for f, _ in stack]))
    assert not stack, "frames left open"
    assert last <= profile["endValue"]
    return out


def test_speedscope_file_is_valid_and_its_timeline_is_the_programs_own(recorded, tmp_path):
    import jsonschema
    d, truth, _ = recorded
    run_loopspy("replay", d / "r.lspy", "--mode", "wall", "--speedscope", tmp_path / "s.json")
    doc = json.loads((tmp_path / "s.json").read_text())
    jsonschema.validate(doc, speedscope_schema())
    frames = doc["shared"]["frames"]
    assert any(f["name"] == "blocking_handler" and f["file"].endswith("stalls.py") and f["line"] > 0 for f in frames)
    (loop,) = [p for p in doc["profiles"] if "MainThread" in p["name"]]
    assert loop["unit"] == "nanoseconds" and loop["type"] == "evented"
    intervals = open_intervals(loop, frames)
    # Each sleep stall is one stretch of <off-CPU: clock_nanosleep> under blocking_handler, as
    # long as the program measured (off-CPU intervals are exact).
    sleeps = [(o, c) for name, o, c, under in intervals
              if name == "<off-CPU: clock_nanosleep>" and "blocking_handler" in under and c - o > 50e6]
    want = sorted((s for s in truth["stalls"] if s["kind"] == "sleep"), key=lambda s: s["start_ns"])
    assert len(sleeps) == len(want), sleeps
    for (o, c), s in zip(sleeps, want):
        assert abs((c - o) - (s["end_ns"] - s["start_ns"])) <= 0.5e6, (c - o, s)
    # Time order is real time: placed by the sleeps, every burn is where the program says it ran,
    # cpu_handler on the CPU inside it (a virtual machine's stolen time leaves some of it
    # unsampled: the summary's note counts it), and nowhere else, and nowhere else.
    origin = sorted(s["start_ns"] - o for (o, _), s in zip(sleeps, want))[len(want) // 2]
    burns = [(s["start_ns"] - origin, s["end_ns"] - origin) for s in truth["stalls"] if s["kind"] == "burn"]
    running = [(o, c) for name, o, c, _ in intervals if name == "cpu_handler"]
    for b0, b1 in burns:
        inside = sum(max(0, min(c, b1) - max(o, b0)) for o, c in running)
        assert inside >= 0.5 * (b1 - b0), (inside, b1 - b0)
    outside = sum(c - o for o, c in running) - sum(max(0, min(c, b1 + 3e6) - max(o, b0 - 3e6))
                                                    for o, c in running for b0, b1 in burns)
    assert outside <= 5e6, outside
    # Wall mode: the loop's idle waits are there too.
    assert sum(c - o for name, o, c, _ in intervals if name == "<idle>") > 0


WEIRD = 'weird;name<script>alert(1)</script>&"quoted"\'s-Ωμέγα-😀'


def test_hostile_names_survive_speedscope_and_pprof(tmp_path):
    run_loopspy("record", "--no-status", "--recording", tmp_path / "h.lspy", "-o", tmp_path / "h.json", "--",
                interpreter("pyenv-3.12"), WORKLOADS / "shapes.py", "names", "--seconds", 2)
    doc = json.loads((tmp_path / "h.json").read_text(encoding="utf-8"))
    import jsonschema
    jsonschema.validate(doc, speedscope_schema())
    assert any(f["name"] == WEIRD for f in doc["shared"]["frames"]), [f["name"] for f in doc["shared"]["frames"]][:40]
    run_loopspy("replay", tmp_path / "h.lspy", "--pprof", tmp_path / "h.pb.gz")
    assert WEIRD in go_pprof("-top", "-nodecount=1000", tmp_path / "h.pb.gz")
    assert WEIRD in go_pprof("-raw", tmp_path / "h.pb.gz")


def go_pprof(*args):
    go = shutil.which("go") or "/usr/lib/go/bin/go"
    assert os.path.exists(go), "go is not installed: run scripts/setup.sh --test"
    proc = subprocess.run([go, "tool", "pprof", *map(str, args)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": os.environ.get("HOME", "/root"), "PPROF_TMPDIR": "/tmp"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def flat_shares(top_text):
    """function -> flat% from `go tool pprof -top`."""
    shares = {}
    for line in top_text.splitlines():
        m = re.match(r"\s*[\d.]+\w*\s+([\d.]+)%\s+[\d.]+%\s+[\d.]+\w*\s+[\d.]+%\s+(.+)$", line)
        if m:
            shares[m.group(2).strip()] = float(m.group(1))
    return shares


def test_go_tool_pprof_reads_the_profile_with_the_collapsed_shares_and_labels(recorded, tmp_path):
    d, _, _ = recorded
    run_loopspy("replay", d / "r.lspy", "--pprof", tmp_path / "p.pb.gz", "--mode", "cpu",
                "--collapsed", tmp_path / "cpu.txt")
    lines = parse_collapsed(tmp_path / "cpu.txt")
    total = sum(w for _, w in lines)
    leaf_share = {}
    for frames, w in lines:
        leaf_share[frame_name(frames[-1])] = leaf_share.get(frame_name(frames[-1]), 0) + 100 * w / total
    top = flat_shares(go_pprof("-top", "-nodecount=1000", "-sample_index=cpu", tmp_path / "p.pb.gz"))
    assert top, "no rows in go tool pprof -top"
    for fn in ("burn_cpu",):
        assert abs(top.get(fn, 0) - leaf_share.get(fn, 0)) <= 1, (fn, top, leaf_share)
    assert leaf_share["burn_cpu"] > 20
    # Off-CPU time is the wall sample type, labelled as the loop blocking.
    blocking = go_pprof("-top", "-sample_index=wall", "-tagfocus=loop=blocking", tmp_path / "p.pb.gz")
    flat = {fn: share for fn, share in flat_shares(blocking).items() if share > 0}
    assert "<off-CPU: clock_nanosleep>" in flat and all(fn.startswith("<off-CPU: ") for fn in flat), flat
    idle = go_pprof("-top", "-sample_index=wall", "-tagfocus=loop=idle", tmp_path / "p.pb.gz")
    assert "<idle>" in idle
    traces = go_pprof("-traces", "-sample_index=wall", tmp_path / "p.pb.gz")
    assert "blocking_handler" in traces and re.search(r"thread:\s*\[?MainThread", traces), traces[:2000]
    tags = go_pprof("-tags", tmp_path / "p.pb.gz")
    assert "thread_id" in tags and "loop" in tags and "running" in tags


def test_the_loop_timeline_trace_has_every_stall_as_a_callback_slice_of_its_true_length(recorded, tmp_path):
    """Perfetto's view of the loop: iterations, idle waits, callbacks by coroutine and task with
    their blocking calls; each deliberate stall is a callback slice as long as the program timed
    it, flagged slow, its sleep a clock_nanosleep slice inside it."""
    d, truth, _ = recorded
    run_loopspy("replay", d / "r.lspy", "-o", tmp_path / "loop.trace.json", "--threshold", 100)
    doc = json.loads((tmp_path / "loop.trace.json").read_text())
    events = doc["traceEvents"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    (loop_track,) = [k for k, n in names.items() if n.startswith("loop: thread MainThread")]
    slices = sorted((e for e in events if e["ph"] == "X" and (e["pid"], e["tid"]) == loop_track), key=lambda e: e["ts"])
    # On one track, slices nest: none ends inside another without starting inside it.
    open_ends = []
    for e in slices:
        while open_ends and open_ends[-1] <= e["ts"] + 1e-3:
            open_ends.pop()
        assert not open_ends or e["ts"] + e["dur"] <= open_ends[-1] + 1e-3, e
        open_ends.append(e["ts"] + e["dur"])
    assert any(e["name"] == "idle" for e in slices) and any(e["cat"] == "loop" for e in slices)
    slow = [e for e in slices if "slow" in e["cat"].split(",")]
    stalls = sorted(truth["stalls"], key=lambda s: s["start_ns"])
    assert len(slow) == len(stalls), [(e["name"], e["dur"]) for e in slow]
    for e, s in zip(sorted(slow, key=lambda e: e["ts"]), stalls):
        assert e["name"].startswith(s["coroutine"]), e["name"]
        assert ("[task " in e["name"]) == (e["args"]["task"] is not None), e
        assert e["args"]["slow"] is True
        assert abs(e["dur"] * 1e3 - (s["end_ns"] - s["start_ns"])) <= max(3e6, 0.05 * (s["end_ns"] - s["start_ns"])), (e, s)
        inner = [b for b in slices if b["cat"] == "blocking" and e["ts"] <= b["ts"] and b["ts"] + b["dur"] <= e["ts"] + e["dur"] + 1e-3]
        if s["kind"] == "sleep":
            (sleep,) = [b for b in inner if b["name"] == "clock_nanosleep"]
            assert abs(sleep["dur"] * 1e3 - (s["end_ns"] - s["start_ns"])) <= 0.5e6, (sleep, s)
            assert any("blocking_handler" in f for f in sleep["args"]["stack"])
        else:
            assert all(b["name"] in ("preempted", "futex") for b in inner), inner
    # Time order is the program's: the gaps between stalls are its own.
    starts = [e["ts"] * 1e3 for e in sorted(slow, key=lambda e: e["ts"])]
    for a, b, sa, sb in zip(starts, starts[1:], stalls, stalls[1:]):
        assert abs((b - a) - (sb["start_ns"] - sa["start_ns"])) <= 3e6
    assert sum(1 for e in events if e["ph"] == "i" and e["name"] == "slow callback") == len(stalls)


def test_in_a_real_browser_the_flame_graph_fits_the_window_and_speedscope_loads_the_profile(recorded, tmp_path):
    """Headless Chromium, files served on 127.0.0.1 only: the flame graph takes the window's
    width (and follows a resize), its title is short with the whole command on hover, it has a
    legend, a bad search regex says so once, and speedscope opens loopspy's profile."""
    import functools
    import http.server
    import threading

    d, _, _ = recorded
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(d / "profile.svg", site / "profile.svg")
    run_loopspy("replay", d / "r.lspy", "--speedscope", site / "s.json")
    release = next(NPM_PREFIX.glob("node_modules/speedscope/dist/release"), None)
    assert release, f"speedscope is not under {NPM_PREFIX}: run scripts/setup.sh --test"
    shutil.copytree(release, site / "speedscope")
    (site / "favicon.ico").write_bytes(b"")  # the browser asks for it: no 404 among the errors
    assert (NPM_PREFIX / "node_modules/puppeteer-core").exists(), "puppeteer-core missing: run scripts/setup.sh --test"
    assert shutil.which("chromium"), "chromium missing: run scripts/setup.sh --test"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proc = subprocess.run(["node", pathlib.Path(__file__).parent / "browser/check_page.js",
                               f"http://127.0.0.1:{server.server_address[1]}"],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "NODE_PATH": str(NPM_PREFIX / "node_modules")})
    finally:
        server.shutdown()
    seen = json.loads(proc.stdout or "{}")
    assert proc.returncode == 0 and "fatal" not in seen, (proc.stdout, proc.stderr)
    assert seen["errors"] == [], seen["errors"]
    for width, geometry in ((1600, seen["wide"]), (900, seen["narrow"])):
        assert geometry["width"] == width, geometry
        assert abs(geometry["root_width"] - (width - 20)) < 1, geometry
        assert geometry["search_x"] == width - 10, geometry
    title = seen["wide"]["title"]
    assert title.startswith("loopspy: python3 ") and "stalls.py" in title and "/pyenv/" not in title, title
    assert seen["wide"]["title_tooltip"].startswith("loopspy: /root/.pyenv/versions/3.12.1/bin/python3 ")
    assert "off-CPU (by syscall)" in seen["wide"]["legend"] and "<idle> (loop waiting)" in seen["wide"]["legend"]
    assert seen["bad_search"].count("Invalid regular expression") == 1, seen["bad_search"]
    assert seen["good_search"].startswith("Matched: "), seen["good_search"]
    # speedscope titles the page with the loaded file's name: it parsed loopspy's profile.
    t = seen["speedscope_title"]
    assert t.startswith("loopspy: ") and "stalls.py" in t and t.endswith(" - speedscope"), t
    assert "thread MainThread" in seen["speedscope_text"], seen["speedscope_text"][:500]


def test_function_flag_makes_one_frame_per_function(recorded, tmp_path):
    d, _, _ = recorded
    run_loopspy("replay", d / "r.lspy", "--collapsed", tmp_path / "lines.txt")
    run_loopspy("replay", d / "r.lspy", "--function", "--collapsed", tmp_path / "functions.txt")
    lines, functions = parse_collapsed(tmp_path / "lines.txt"), parse_collapsed(tmp_path / "functions.txt")
    # The same time (each line rounds its own nanoseconds down to µs: at most 1 µs a line apart).
    assert abs(sum(w for _, w in lines) - sum(w for _, w in functions)) <= len(lines)
    run_once = lambda stacks: {f for frames, _ in stacks for f in frames if f.startswith("BaseEventLoop._run_once ")}
    assert len(run_once(lines)) > 1  # one per line it was sampled at
    (only,) = run_once(functions)
    assert re.fullmatch(r"BaseEventLoop\._run_once \(/.*/asyncio/base_events\.py\)", only), only


def test_with_nothing_over_the_threshold_the_longest_callback_is_named(recorded, tmp_path):
    d, truth, _ = recorded
    longest = max(truth["stalls"], key=lambda s: s["end_ns"] - s["start_ns"])
    true_ms = (longest["end_ns"] - longest["start_ns"]) / 1e6
    proc = run_loopspy("replay", d / "r.lspy", "--threshold", 1000, "--slow-callbacks", "--report", tmp_path / "r.json")
    assert "no slow callbacks" in proc.stdout, proc.stdout
    m = re.search(r"the longest callback took ([\d.]+) ms \((\S+) .*--threshold (\d+) or less lists it", proc.stdout)
    assert m and m.group(2) == longest["coroutine"] and abs(float(m.group(1)) - true_ms) <= 3, proc.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["slow_callbacks"] == []
    assert abs(report["longest_callback"]["duration_ms"] - true_ms) <= 3, report["longest_callback"]
    # The threshold it suggests lists it.
    run_loopspy("replay", d / "r.lspy", "--threshold", m.group(3), "--report", tmp_path / "again.json")
    listed = json.loads((tmp_path / "again.json").read_text())["slow_callbacks"]
    assert any(cb["callback"].startswith(longest["coroutine"]) for cb in listed)
    assert json.loads((tmp_path / "again.json").read_text())["longest_callback"] is None
