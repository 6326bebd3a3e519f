#include "cli/output_flags.hpp"

#include <CLI/CLI.hpp>

namespace loopspy {

void add_output_flags(CLI::App& app, OutputArgs& a) {
    app.add_option("--flamegraph", a.flamegraph, "Write an interactive flame graph (SVG) to FILE");
    app.add_option("--collapsed", a.collapsed, "Write collapsed stacks to FILE: `frame;frame;... WEIGHT_US` per line");
    app.add_option("--mode", a.mode,
                   "What the flame graph and collapsed stacks weigh: cpu (on-CPU samples), busy (default: on-CPU "
                   "plus time blocked off-CPU), wall (busy plus the loop's idle wait as an <idle> frame)")
        ->check(CLI::IsMember({"cpu", "busy", "wall"}));
    app.add_flag("--slow-callbacks", a.slow_callbacks,
                 "Print the event-loop callbacks that ran at least --threshold, longest first, to stdout");
    app.add_flag("--no-group", a.no_group,
                 "--slow-callbacks: a row for every stall (by default repeated stalls of one callback are one row "
                 "with their count, total, p50 and max, and the worst one in full)");
    app.add_option("--sort", a.sort, "Order of --slow-callbacks: duration (default) or time")
        ->check(CLI::IsMember({"duration", "time"}));
    app.add_option("--threshold", a.threshold_ms, "Slow-callback threshold in milliseconds (default 100, like asyncio)");
    app.add_option("--report", a.report, "Write the loop analysis as JSON to FILE (schema in README)");
    app.add_option("--loop-thread", a.loop_thread, "Analyse this thread as the event loop instead of finding loops");
    app.add_option("--culprit-include", a.culprit_include,
                   "A file glob (fnmatch) that is the program's own code for a slow callback's culprit, wherever it "
                   "lies (repeatable; by default the standard library and site-/dist-packages are not)")
        ->expected(1);
    app.add_option("--culprit-exclude", a.culprit_exclude,
                   "A file glob that is not the program's own code for the culprit (repeatable; include wins)")
        ->expected(1);
    app.add_flag("--async", a.async,
                 "Flame graph and collapsed stacks by asyncio task: each task under the tasks that await it "
                 "(\"<task> NAME\" frames and their await chains) instead of under the event loop's frames");
    app.add_flag("--function", a.function,
                 "Flame graph and collapsed stacks: one frame per function, \"qualname (file)\", whatever line it "
                 "was at (by default each line is a frame; py-spy's -F/--function is its own take on this)");
    app.add_flag("--tasks", a.tasks,
                 "Print every task's running and waiting time and where it waited; adds \"tasks\" to --report");
    app.add_option("--tasks-flamegraph", a.tasks_flamegraph,
                   "Write a flame graph (SVG) of the wall time tasks spent suspended, by await chain");
    app.add_option("--tasks-collapsed", a.tasks_collapsed, "Write the same as collapsed stacks to FILE");
    app.add_option("--speedscope", a.speedscope,
                   "Write a speedscope profile (JSON, nanoseconds) to FILE: one timeline per thread, weighed as --mode");
    app.add_option("--pprof", a.pprof,
                   "Write a gzipped pprof profile to FILE (go tool pprof, Pyroscope, Parca): sample types cpu and "
                   "wall in nanoseconds, labels thread, thread_id, pid, task, loop");
    app.add_option("--trace", a.trace,
                   "Write the loop's timeline as a Chrome trace (JSON, for Perfetto) to FILE: iterations, callbacks "
                   "by coroutine and task, their blocking calls, idle waits; slow callbacks flagged");
    app.add_flag("--force", a.force,
                 "Write an output (or the recording) through a symbolic link given as its path (refused by default: "
                 "a link planted in a shared folder could point at any file)");
    app.add_option("-f,--format", a.format,
                   "The format of -o FILE: flamegraph, collapsed (or raw), speedscope, pprof, chrometrace (default: "
                   "from FILE's extension: .svg/.html, .txt/.collapsed/.folded, .trace.json, .json, "
                   ".pb.gz/.pprof/.pb)");
}

void add_window_flags(CLI::App& app, OutputArgs& a) {
    app.add_option("--from", a.from_s, "Analyse from SEC seconds after the recording started");
    app.add_option("--to", a.to_s, "Analyse up to SEC seconds after the recording started");
    app.add_option("--thread", a.threads, "Only this thread (repeatable)")->expected(1);
}

}  // namespace loopspy
