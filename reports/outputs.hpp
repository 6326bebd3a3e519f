// Every output loopspy produces from a Profile, as the command line asks for them: `record` at
// the end of a recording and `replay` on a recording file go through this same code. The flags
// themselves are registered in cli/output_flags.cpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "recording/profile.hpp"
#include "reports/loop_analysis.hpp"

namespace loopspy {

struct OutputArgs {
    std::string flamegraph;          // --flamegraph FILE.svg
    std::string collapsed;           // --collapsed FILE
    bool slow_callbacks = false;     // --slow-callbacks: table on stdout
    bool no_group = false;           // --no-group: every stall its own row (default: one row per callback)
    std::string sort = "duration";   // --sort duration|time
    double threshold_ms = 100;       // --threshold MS
    std::string report;              // --report FILE.json
    std::string mode = "busy";       // --mode cpu|busy|wall
    std::optional<int> loop_thread;  // --loop-thread TID
    std::vector<std::string> culprit_include;  // --culprit-include GLOB (repeatable)
    std::vector<std::string> culprit_exclude;  // --culprit-exclude GLOB (repeatable)
    std::optional<double> from_s;    // --from SEC (replay): analyse from this many seconds in
    std::optional<double> to_s;      // --to SEC (replay)
    std::vector<int> threads;        // --thread TID (replay, repeatable): only these threads
    bool async = false;              // --async: flame graph and collapsed stacks by task
    bool function = false;           // --function: one frame per function, whatever its line
    bool tasks = false;              // --tasks: the tasks table on stdout, "tasks" in the report
    std::string tasks_flamegraph;    // --tasks-flamegraph FILE.svg
    std::string tasks_collapsed;     // --tasks-collapsed FILE
    std::string speedscope;          // --speedscope FILE.json
    std::string pprof;               // --pprof FILE.pb.gz
    std::string trace;               // --trace FILE.json (Chrome Trace Event format)
    std::string output;              // -o FILE: an output of --format (or of its extension)
    std::string format;              // -f/--format FORMAT for -o
    bool force = false;              // --force: write through a symbolic link given as an output

    /// Every output file named (some may be empty).
    std::vector<const std::string*> files() const {
        return {&flamegraph, &collapsed, &report, &tasks_flamegraph, &tasks_collapsed, &speedscope, &pprof, &trace};
    }

    bool any() const {
        return !flamegraph.empty() || !collapsed.empty() || slow_callbacks || !report.empty() || tasks ||
               !tasks_flamegraph.empty() || !tasks_collapsed.empty() || !speedscope.empty() || !pprof.empty() ||
               !trace.empty();
    }
};

/// Checks values the flag parser cannot (a finite threshold, ...).
Result<void> validate_outputs(const OutputArgs& args);
/// Checks that every output file can be written (core/output_files.hpp), before anything is
/// recorded or read; at most one output goes to stdout.
Result<void> check_output_files(const OutputArgs& args);
/// Routes -o FILE (args.output) to the output its --format, or without one its extension, names.
Result<void> route_output(OutputArgs& args);

/// The formats -f/--format names, and what a file's extension means without one.
inline constexpr const char* kOutputFormats = "flamegraph, collapsed (or raw), speedscope, pprof, chrometrace";
/// True when `file` names a recording (.lspy), which -o writes as before.
bool names_recording(const std::string& file);
/// A command line for a title: the program's base name instead of its path, and at most
/// `max_chars` bytes (cut with "…").
std::string short_command(const std::string& command, std::size_t max_chars = 90);

/// The loop-analysis settings the flags ask for (threshold, order, loop thread, window, threads).
LoopAnalysisOptions analysis_options(const OutputArgs& args);

/// Writes every output asked for. `default_flamegraph` is written when nothing was asked for.
Result<void> write_outputs(const Profile& profile, const OutputArgs& args, const std::string& default_flamegraph);

}  // namespace loopspy
