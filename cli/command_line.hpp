// The command line: parsed, checked as far as arguments alone can be, and routed (-o to the
// output it names), before anything runs. One function, so that it can be fuzzed on its own.
#pragma once

#include <variant>

#include "cli/dump_command.hpp"
#include "cli/record_command.hpp"
#include "cli/replay_command.hpp"
#include "core/result.hpp"

namespace loopspy {

struct CommandLine {
    enum class Command { Record, Top, Replay, Dump, Doctor } command = Command::Record;
    RecordArgs record;  // record and top (top: record.top)
    ReplayArgs replay;
    DumpArgs dump;
};

/// The command argv asks for, or the exit code to return at once: 0 after --help or --version
/// (printed), 2 after a bad argument (printed as one `loopspy: error: ... (see --help)` line).
std::variant<CommandLine, int> parse_command_line(int argc, char** argv);

/// The exit code of an error of this kind (the README's table).
int exit_code_for(ErrorKind kind);

/// Where -o goes: a .lspy name is the recording; any other is an output of -f FORMAT (or of its
/// extension), and the recording goes to --recording FILE or the default name.
Result<void> resolve_output_names(RecordArgs& args);

}  // namespace loopspy
