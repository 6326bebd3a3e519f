// loopspy's entry point: the command line, then the command; the one place that prints errors.
#include <cstdio>
#include <variant>

#include "cli/command_line.hpp"
#include "cli/doctor_command.hpp"

int main(int argc, char** argv) {
    using loopspy::CommandLine;
    auto parsed = loopspy::parse_command_line(argc, argv);
    if (const int* code = std::get_if<int>(&parsed)) return *code;
    CommandLine& cl = std::get<CommandLine>(parsed);
    auto result = cl.command == CommandLine::Command::Replay   ? loopspy::run_replay(cl.replay)
                  : cl.command == CommandLine::Command::Dump   ? loopspy::run_dump(cl.dump)
                  : cl.command == CommandLine::Command::Doctor ? loopspy::run_doctor()
                                                               : loopspy::run_record(cl.record);
    if (!result) {
        std::fprintf(stderr, "loopspy: error: %s\n", result.error().message.c_str());
        return loopspy::exit_code_for(result.error().kind);
    }
    return result.value();
}
