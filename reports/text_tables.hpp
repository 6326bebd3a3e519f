// Every text table loopspy prints, one place for their layout and their safety.
//
// The slow-callbacks table printed on stdout (--slow-callbacks): a header naming the threshold
// and the loop threads, one line per loop with its iterations and busy/idle time, then one row
// per slow callback with, under it, where it was off-CPU longest (intervals with the same
// reason at the same innermost frame summed into one line):
//
//   loopspy: 2 slow callbacks ≥ 100 ms on loop thread MainThread (4242), longest first
//     loop MainThread (4242): 388 iterations, busy 2.024 s (71.1%), idle 0.824 s
//          start    duration      on-CPU     blocked  thread                  callback
//        1.036 s    300.7 ms      0.6 ms    300.1 ms  4242 MainThread         blocking_handler (stalls.py:31)
//         ↳ 300.1 ms in clock_nanosleep at blocking_handler (stalls.py:31)
//        1.920 s    202.2 ms    198.3 ms      3.9 ms  4242 MainThread         cpu_handler (stalls.py:37)
//         ↳ 3.9 ms preempted (12 times) at burn_cpu (stalls.py:24)
//
// Names from the target are made terminal-safe (invalid UTF-8 becomes U+FFFD; control
// characters, C1 controls and bidirectional overrides become '?') and columns are padded by
// display width, not bytes, so non-ASCII thread names keep the columns aligned.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "recording/profile.hpp"
#include "reports/loop_analysis.hpp"
#include "reports/process_dump.hpp"
#include "reports/task_summary.hpp"

namespace loopspy {

struct SlowCallbackTableOptions {
    std::size_t max_callbacks = 20;         // rows shown; the rest are counted in a last line
    std::size_t blocking_per_callback = 3;  // blocking lines shown under each row
    bool group = true;                      // repeated stalls of one callback as one row (--no-group: off)
};

std::string render_slow_callbacks_table(const Profile& profile, const LoopAnalysis& analysis,
                                        const SlowCallbackTableOptions& options = {});

/// `text` (terminal-safe) cut to `width` columns with "…", then padded with spaces to `width`.
std::string fit(const std::string& text, std::size_t width);
/// Text from the target made safe to print on a terminal (rules above).
std::string terminal_safe(std::string_view text);

/// Columns a terminal gives valid UTF-8 text: 2 for East Asian wide and emoji code points, 0 for
/// combining marks, 1 otherwise.
std::size_t display_width(std::string_view utf8);

/// The table `--tasks` prints: the `limit` longest tasks, each with its three longest waits.
std::string render_tasks_table(const std::vector<TaskSummary>& tasks, std::size_t limit = 20);

/// `dump`: the threads' stacks, then "Tasks: N" and the task tree (as `python -m asyncio pstree`).
std::string render_dump_text(const ProcessDump& dump);

/// What `replay FILE` prints with no output flag: target, Python, length and ending, samples,
/// loop threads, then the five longest slow callbacks.
std::string render_recording_summary(const Profile& profile, const LoopAnalysis& analysis, bool complete,
                                     std::string_view ending);

}  // namespace loopspy
