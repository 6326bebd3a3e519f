"""One measured run: a workload, optionally under a profiler, measured over its timed window.

The workload warms up; the profiler (if any) attaches, and after a settle time the window opens
(go file), so attaching and start-up are outside it. Returned: the workload's throughput and
on-CPU share, the other load on the machine during the run (quiet.LoadMeter), and for a profiled
run the profiler's CPU per second of window (schedstat, read every 20 ms), its rusage CPU and
peak RSS, its parsed summary, and the samples it recorded and kept against those requested:

  loopspy             on-CPU samples of the loop thread inside the window, read from the
                      recording (kept: fully symbolized ones), / rate x the thread's CPU time
                      in the window (the workload's time.thread_time());
  profiling.sampling  its samples of the loop thread inside the same window, read from its Gecko
                      profile's timestamps (CLOCK_MONOTONIC; each has a stack, so kept = recorded),
                      / rate x the window's wall time (a wall-clock sampler: one sample per period
                      requested).
"""
import itertools
import time

from . import lspy, procs, profilers, quiet
from .workload import WorkloadRun

_tags = itertools.count(1)


def run_once(python, workload, spec, tmp, window, warmup, settle, env=None, keep_recording=False):
    tag = f"{next(_tags):04d}"
    w = WorkloadRun(python, workload, tmp, tag, window, warmup, env=env)
    prof = None
    try:
        w.wait_ready()
        if spec:
            prof = spec.start(w.pid, tmp, tag, duration=window + 60)
            try:
                prof.wait_attached(w.deadline)
            except procs.BenchError as e:
                raise procs.BenchError(f"{e}\n(the workload, pid {w.pid}: "
                                       f"{'running' if w.proc.poll() is None else f'exited with {w.proc.returncode}'}"
                                       f"; {procs.tail(w.err_path)})")
            time.sleep(settle)
        meter = quiet.LoadMeter()
        meter.start([w.pid] + ([prof.pid] if prof else []))
        poller = procs.CpuPoller(prof.pid) if prof else None
        if poller:
            poller.poll(force=True)
        w.go()
        res = w.finish(on_poll=poller.poll if poller else None)
        if poller:
            poller.poll(force=True)
        out = {"workload": workload, "ops_per_s": res["ops_per_s"],
               "target_cpu_share": res["window_thread_cpu_s"] / res["window_s"], "workload_result": res}
        out.update(meter.stop({w.pid: res["rusage_cpu_s"] * 1e9, **({prof.pid: poller.last()} if prof else {})}))
        if not prof:
            return out
        try:
            p = prof.finish(time.monotonic() + 60)
        except procs.BenchError as e:
            raise procs.BenchError(f"{e}\n(the workload, pid {w.pid}, exited with {w.proc.returncode}: "
                                   f"{procs.tail(w.err_path)})")
        out.update({k: p[k] for k in ("cpu_s", "maxrss_kib", "attach_s", "summary", "summary_line")})
        out["window_cpu_per_s"] = poller.rate(res["mono_ns_at_go"], res["mono_ns_at_end"])
        if out["window_cpu_per_s"] is None:
            raise procs.BenchError(f"{spec.label}: no CPU readings of the profiler inside the window")
        if spec.kind == "loopspy":
            rec = lspy.read(p["recording"])
            inside = rec.on_cpu(tid=w.pid, start_ns=res["mono_ns_at_go"], end_ns=res["mono_ns_at_end"])
            requested = spec.rate * res["window_thread_cpu_s"]
            if not inside:
                raise procs.BenchError(f"{spec.label}: no sample of the loop thread inside the window")
            out["requested"] = requested
            out["recorded"] = len(inside) / requested
            out["kept"] = sum(1 for s in inside if rec.fully_symbolized(s)) / requested
            out["lost_share"] = p["summary"]["lost"] / max(1, p["summary"]["samples"] + p["summary"]["lost"])
            out["recording_bytes"] = p["recording_bytes"]
            out["recording_path"] = p["recording"]
            if keep_recording:
                out["recording"] = rec
        else:
            s = p["summary"]
            samples = profilers.gecko_samples(p["gecko"], w.pid, on_cpu_only=spec.mode == "cpu")
            inside = [x for x in samples if res["mono_ns_at_go"] <= x[0] <= res["mono_ns_at_end"]]
            if not inside:
                raise procs.BenchError(f"{spec.label}: no sample of the loop thread inside the window")
            requested = spec.rate * res["window_s"]
            out["requested"] = requested
            # Every sample in its profile has a stack: a failed read leaves no sample behind, so
            # within the window what it recorded is what it kept.
            out["recorded"] = out["kept"] = len(inside) / requested
            out["lost_share"] = s["error_pct"] / 100
            if keep_recording:  # the samples themselves, for the CPU shares (not kept in the results)
                out["samples_in_window"] = inside
        return out
    finally:
        w.kill()
        if prof:
            prof.kill()
