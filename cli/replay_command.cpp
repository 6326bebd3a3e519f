#include "cli/replay_command.hpp"

#include <algorithm>
#include <cstdio>
#include <set>

#include "core/memory.hpp"
#include "recording/format.hpp"
#include "reports/loop_analysis.hpp"
#include "reports/text_tables.hpp"

namespace loopspy {
namespace {

/// --pid: the threads of that process (those --thread also names, if given), as a thread filter.
Result<void> select_process(const Profile& profile, Pid pid, OutputArgs& outputs) {
    std::set<int> threads;
    for (const SampleRecord& s : profile.samples()) {
        if (profile.process_of(s.tid) == pid) threads.insert(s.tid.value);
    }
    for (const SelectorWait& w : profile.selector_waits()) {
        if (profile.process_of(w.tid) == pid) threads.insert(w.tid.value);
    }
    if (threads.empty() && !profile.processes().count(pid) && pid != profile.info.pid) {
        std::string held;
        for (const auto& [p, rec] : profile.processes()) held += (held.empty() ? "" : ", ") + std::to_string(p.value);
        if (held.empty()) held = std::to_string(profile.info.pid.value);
        return make_error(ErrorKind::BadInput, "the recording has no process " + std::to_string(pid.value) +
                                                   " (it holds " + held + ")");
    }
    std::vector<int> chosen;
    for (int t : threads) {
        if (outputs.threads.empty() || std::find(outputs.threads.begin(), outputs.threads.end(), t) != outputs.threads.end()) {
            chosen.push_back(t);
        }
    }
    // A process with no events of its own: a filter that matches no thread.
    if (chosen.empty()) chosen.push_back(0);
    outputs.threads = std::move(chosen);
    return {};
}

}  // namespace

Result<int> run_replay(const ReplayArgs& args) {
    LOOPSPY_CHECK(validate_outputs(args.outputs));
    LOOPSPY_CHECK(check_output_files(args.outputs));
    keep_freed_memory_for_reuse();
    LOOPSPY_TRY(ReadResult read, read_recording(args.file));
    if (!read.warning.empty()) std::fprintf(stderr, "loopspy: warning: %s\n", read.warning.c_str());
    OutputArgs outputs = args.outputs;
    if (args.pid) LOOPSPY_CHECK(select_process(read.profile, Pid{*args.pid}, outputs));
    if (!outputs.any()) {
        const LoopAnalysis analysis = analyze_loops(read.profile, analysis_options(outputs));
        std::fputs(render_recording_summary(read.profile, analysis, read.complete, read.ending).c_str(), stdout);
        return 0;
    }
    LOOPSPY_CHECK(write_outputs(read.profile, outputs, ""));
    return 0;
}

}  // namespace loopspy
