#include "cli/replay_command.hpp"

#include <cstdio>

#include "core/memory.hpp"
#include "recording/format.hpp"
#include "reports/loop_analysis.hpp"
#include "reports/text_tables.hpp"

namespace loopspy {
Result<int> run_replay(const ReplayArgs& args) {
    LOOPSPY_CHECK(validate_outputs(args.outputs));
    keep_freed_memory_for_reuse();
    LOOPSPY_TRY(ReadResult read, read_recording(args.file));
    if (!read.warning.empty()) std::fprintf(stderr, "loopspy: warning: %s\n", read.warning.c_str());
    if (!args.outputs.any()) {
        const LoopAnalysis analysis = analyze_loops(read.profile, analysis_options(args.outputs));
        std::fputs(render_recording_summary(read.profile, analysis, read.complete, read.ending).c_str(), stdout);
        return 0;
    }
    LOOPSPY_CHECK(write_outputs(read.profile, args.outputs, ""));
    return 0;
}

}  // namespace loopspy
