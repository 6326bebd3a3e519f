// The output flags shared by `record` and `replay`, and replay's window flags.
#pragma once

#include "reports/outputs.hpp"

namespace CLI {
class App;
}

namespace loopspy {

/// Registers the output flags on a subcommand.
void add_output_flags(CLI::App& app, OutputArgs& args);
/// Registers --from, --to and --thread (replay).
void add_window_flags(CLI::App& app, OutputArgs& args);

}  // namespace loopspy
