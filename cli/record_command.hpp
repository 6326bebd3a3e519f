// `loopspy record`: attach to a pid or launch a command, sample it, and write the outputs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bpf/sampler.hpp"
#include "cli/output_flags.hpp"
#include "core/result.hpp"

namespace loopspy {

struct RecordArgs {
    std::optional<int> pid;
    std::vector<std::string> command;  // after `--`
    double duration_s = 0;             // 0: until the target exits or Ctrl-C
    int rate_hz = 1000;
    OutputArgs outputs;
    std::string recording;             // --recording FILE, or -o FILE.lspy
    std::string output;                // -o FILE: a recording (.lspy), else an output (see route_output)
    std::string sampling = "per-cpu";  // --sampling per-cpu|per-thread
    bool no_status = false;
    bool subprocesses = false;         // -s: every descendant too
    double task_rate_hz = 10;          // --task-rate HZ (0: no task snapshots)
    bool top = false;                  // `loopspy top`: the live view instead of the status line
    std::string self_command_line;
};

/// Runs the record command (and top); returns the process exit code.
Result<int> run_record(const RecordArgs& args);

}  // namespace loopspy
