"""Shared helpers of the benchmark suite, one module per concern:

procs              starting, reaping and killing child processes with deadlines; /proc readers
quiet              waiting for a quiet machine, and measuring other processes' load during a run
workload           the ready/go/result protocol of bench/workloads/*.py
profilers          running loopspy and profiling.sampling against a process, parsing what they print
sampling_launcher  runs profiling.sampling unchanged, signalling when its sampling loop starts
measure            one measured run: a workload, optionally under a profiler, over its timed window
lspy               a reader for loopspy's recording format (docs/recording-format.md)
stats              medians, spreads and table cells
env                the machine, the binary, the interpreter, result files, and each part's harness
"""
