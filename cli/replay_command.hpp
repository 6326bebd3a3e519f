// `loopspy replay FILE`: every output from a recording alone.
#pragma once

#include <optional>
#include <string>

#include "cli/output_flags.hpp"
#include "core/result.hpp"

namespace loopspy {

struct ReplayArgs {
    std::string file;
    OutputArgs outputs;
    std::optional<int> pid;  // --pid: only this process's threads
};

Result<int> run_replay(const ReplayArgs& args);

}  // namespace loopspy
