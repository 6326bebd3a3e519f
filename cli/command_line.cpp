#include "cli/command_line.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include <bpf/libbpf.h>

#include "bpf/sampler.hpp"
#include "build_info.hpp"  // LOOPSPY_GIT_COMMIT, LOOPSPY_BUILD_DATE (generated at every build)
#include "cli/doctor_command.hpp"
#include "cli/output_flags.hpp"

namespace loopspy {

namespace {

std::string join_argv(int argc, char** argv) {
    std::string s;
    for (int i = 0; i < argc; ++i) {
        if (i) s += ' ';
        s += argv[i];
    }
    return s;
}

}  // namespace

/// What --version says: the version, the commit and date it was built from, the libbpf inside,
/// and the BPF features the kernel side uses (`loopspy doctor` checks this machine for them).
std::string version_text() {
    return std::string("loopspy ") + LOOPSPY_VERSION + "\n" + "commit " + LOOPSPY_GIT_COMMIT + ", built " +
           LOOPSPY_BUILD_DATE + "\n" + "libbpf " + libbpf_version_string() + (LOOPSPY_STATIC_BUILD ? " (linked in)" : "") +
           "\n" +
           "BPF: CO-RE with the kernel's BTF, ring buffer, bpf_loop, perf_event cpu-clock sampling, sched_switch and "
           "process hooks through tp_btf (else raw_tp), selector waits through fentry/fexit (else the syscall "
           "tracepoints); `loopspy doctor` checks this machine";
}

int exit_code_for(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::BadInput: return 2;
        case ErrorKind::NoSuchProcess: return 3;
        case ErrorKind::NotPython: return 4;
        case ErrorKind::UnsupportedPython: return 5;
        case ErrorKind::NoPrivilege: return 6;
        case ErrorKind::NoBtf: return 7;
        default: return 1;
    }
}

Result<void> resolve_output_names(RecordArgs& args) {
    if (!args.output.empty() && names_recording(args.output)) {
        if (!args.recording.empty() && args.recording != args.output) {
            return make_error(ErrorKind::BadInput, "-o " + args.output + " and --recording " + args.recording +
                                                       " both name the recording: give one");
        }
        args.recording = args.output;
    } else {
        args.outputs.output = args.output;
    }
    return route_output(args.outputs);
}

std::variant<CommandLine, int> parse_command_line(int argc, char** argv) {
    CLI::App app{"loopspy: a sampling profiler for Python asyncio programs, built on eBPF.\n"
                 "Attaches to a running process (or launches one) without stopping it, walks the\n"
                 "Python stacks in the kernel, and writes flame graphs."};
    app.set_version_flag("-V,--version", version_text);
    app.require_subcommand(1);

    // What `record` and `top` share: the target, how it is sampled, where the recording goes.
    auto add_recording_flags = [](CLI::App& cmd, RecordArgs& r, int& pid) {
        auto* pid_opt = cmd.add_option("-p,--pid", pid,
                                       "Process id of a running Python program to attach to (a thread id: its process)");
        cmd.add_option("-d,--duration", r.duration_s, "Seconds to record (default: until the target exits, Ctrl-C, or q in top)")
            ->check(CLI::NonNegativeNumber);
        cmd.add_option("-r,--rate", r.rate_hz, "Samples per second per thread (default 1000)")
            ->check(CLI::Range(1, kMaxRateHz));
        cmd.add_option("--sampling", r.sampling,
                       "How cpu-clock sampling is attached: per-cpu (default: one timer on every CPU, the program "
                       "keeps the target's samples) or per-thread (a timer only while the target's threads run; "
                       "misses threads that live less than a sampling period)")
            ->check(CLI::IsMember({"per-cpu", "per-thread"}));
        cmd.add_option("--task-rate", r.task_rate_hz,
                       "asyncio task snapshots per second (default 10; 0 turns them off). Snapshots also follow "
                       "new running coroutines, and never take more than 2% of the time; at most 1000");
        cmd.add_flag("-s,--subprocesses", r.subprocesses,
                     "Also record every descendant process, those started later included (each its own "
                     "section in every output)");
        cmd.add_option("-o,--output", r.output,
                       "FILE.lspy: the recording to write (replay it with `loopspy replay`). Any other name: an "
                       "output in the format -f gives, else the one its extension names (profile.svg: a flame "
                       "graph); the recording then goes to --recording or the default name");
        cmd.add_option("--recording", r.recording, "Recording file to write (default loopspy-PID-YYYYmmdd-HHMMSS.lspy)");
        cmd.add_option("command", r.command, "Command to launch and profile (after --)");
        return pid_opt;
    };

    CommandLine cl;
    RecordArgs& rec = cl.record;
    auto* record = app.add_subcommand("record", "Sample a Python process and write a flame graph and/or collapsed stacks");
    int pid = 0;
    auto* pid_opt = add_recording_flags(*record, rec, pid);
    add_output_flags(*record, rec.outputs);
    record->add_flag("--no-status", rec.no_status, "Do not show the live status line on a terminal");

    RecordArgs top_args;
    top_args.top = true;
    auto* top = app.add_subcommand("top", "Watch a Python process's event loops live in the terminal (records too: "
                                          "replay it later)");
    int top_pid = 0;
    auto* top_pid_opt = add_recording_flags(*top, top_args, top_pid);
    top->add_option("--threshold", top_args.outputs.threshold_ms,
                    "Stalls: callbacks of at least this many ms (default 100; + and - change it live)");

    ReplayArgs& rep = cl.replay;
    auto* replay = app.add_subcommand("replay", "Produce any output from a recording made by `loopspy record`; "
                                                "with no output flag, print a summary");
    replay->add_option("file", rep.file, "The recording (.lspy)")->required();
    add_output_flags(*replay, rep.outputs);
    add_window_flags(*replay, rep.outputs);
    replay->add_option("--pid", rep.pid, "Only this process of a recording made with --subprocesses");
    replay->add_option("-o,--output", rep.outputs.output,
                       "Write the output -f names (default: the one FILE's extension names) to FILE");

    DumpArgs& dump_args = cl.dump;
    auto* dump = app.add_subcommand("dump", "Print every thread's Python stack and the asyncio task tree of a "
                                            "running process, once");
    dump->add_option("-p,--pid", dump_args.pid, "Process id of the Python program")->required();
    dump->add_flag("--json", dump_args.json, "Print JSON for scripts instead of text");
    dump->add_flag("-s,--subprocesses", dump_args.subprocesses,
                   "Also dump every descendant process that runs Python (JSON: an array, one object each)");
    dump->add_flag("--nonblocking", dump_args.nonblocking,
                   "Do not pause the process while reading it (by default its threads are held still with "
                   "ptrace for the few milliseconds the read takes, so stacks and tasks agree)");

    auto* doctor = app.add_subcommand("doctor", "Check what this machine gives loopspy (privilege, BTF, each BPF feature "
                                                "and its fallback) and whether it can record here");

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {  // --help, --version
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // Bad arguments are an error like any other: one line, exit code 2.
        std::string what = e.what();
        // CLI11 says "Could not convert: --thread = abc": say what was expected.
        if (const std::string prefix = "Could not convert: "; what.starts_with(prefix)) {
            const auto eq = what.find(" = ");
            if (eq != std::string::npos) {
                what = what.substr(prefix.size(), eq - prefix.size()) + ": " + what.substr(eq + 3) + " is not a number";
            }
        }
        std::fprintf(stderr, "loopspy: error: %s (see --help)\n", what.c_str());
        return exit_code_for(ErrorKind::BadInput);
    }

    if (*pid_opt) rec.pid = pid;
    rec.self_command_line = join_argv(argc, argv);
    if (*top_pid_opt) top_args.pid = top_pid;
    top_args.self_command_line = rec.self_command_line;

    // `top` is `record` with the live view: the same arguments, the same run.
    if (top->parsed()) {
        cl.command = CommandLine::Command::Top;
        cl.record = std::move(top_args);
    } else if (replay->parsed()) {
        cl.command = CommandLine::Command::Replay;
    } else if (dump->parsed()) {
        cl.command = CommandLine::Command::Dump;
    } else if (doctor->parsed()) {
        cl.command = CommandLine::Command::Doctor;
    }
    const bool recording = cl.command == CommandLine::Command::Record || cl.command == CommandLine::Command::Top;
    auto routed = recording ? resolve_output_names(cl.record)
                  : cl.command == CommandLine::Command::Replay ? route_output(cl.replay.outputs)
                                                               : Result<void>{};
    if (!routed) {
        std::fprintf(stderr, "loopspy: error: %s\n", routed.error().message.c_str());
        return exit_code_for(routed.error().kind);
    }
    return cl;
}

}  // namespace loopspy
