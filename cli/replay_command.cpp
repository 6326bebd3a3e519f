#include "cli/replay_command.hpp"

#include <cstdio>

#include "core/memory.hpp"
#include "recording/format.hpp"
#include "reports/json_report.hpp"
#include "reports/loop_analysis.hpp"
#include "reports/slow_callbacks.hpp"

namespace loopspy {
namespace {

/// What `replay FILE` prints with no output flag.
void print_summary(const ReadResult& r, const OutputArgs& args) {
    const Profile& p = r.profile;
    const ProfileInfo& info = p.info;
    LoopAnalysis a = analyze_loops(p, analysis_options(args));

    std::printf("target:        pid %d  %s\n", info.pid.value, info.target_command.c_str());
    std::printf("python:        %s (%s)\n", info.python.text().c_str(), info.python_binary.c_str());
    std::printf("recorded:      %.2f s at %d Hz on %s, %s\n", (info.end - info.start).seconds(), info.rate_hz,
                info.kernel.c_str(), r.complete ? ("complete (" + r.ending + ")").c_str() : "cut short");
    std::printf("samples:       %llu on-CPU, %llu off-CPU intervals, %llu lost\n",
                static_cast<unsigned long long>(a.samples.on_cpu), static_cast<unsigned long long>(a.samples.off_cpu),
                static_cast<unsigned long long>(a.samples.lost));
    std::printf("threads:       %zu", p.threads().size());
    std::printf("  loop threads:");
    if (a.loop_threads.empty()) std::printf(" none found");
    for (Tid t : a.loop_threads) std::printf(" %d", t.value);
    std::printf("\n\n");
    SlowCallbackTableOptions to;
    to.max_callbacks = 5;
    std::fputs(render_slow_callbacks_table(p, a, to).c_str(), stdout);
}

}  // namespace

Result<int> run_replay(const ReplayArgs& args) {
    LOOPSPY_CHECK(validate_outputs(args.outputs));
    keep_freed_memory_for_reuse();
    LOOPSPY_TRY(ReadResult read, read_recording(args.file));
    if (!read.warning.empty()) std::fprintf(stderr, "loopspy: warning: %s\n", read.warning.c_str());
    if (!args.outputs.any()) {
        print_summary(read, args.outputs);
        return 0;
    }
    LOOPSPY_CHECK(write_outputs(read.profile, args.outputs, ""));
    return 0;
}

}  // namespace loopspy
