// Every JSON loopspy writes, in one place: the report (--report FILE.json), with `tasks` under
// --tasks, and `dump --json`. The report's fields are a contract scripts rely on:
//
//   python_version  string, "3.12.1" (pre-releases: "3.14.0rc1")
//   pid             integer
//   duration_s      number: the analysed span (the recording, or the --from/--to window)
//   samples         {on_cpu, off_cpu, lost}: integers
//   loop_threads    [tid]
//   slow_callbacks  [{start_ms (since the recording's start), duration_ms, on_cpu_ms, off_cpu_ms,
//                     callback: string, task: string or null, thread: tid,
//                     stack: [frame, outermost first],
//                     blocking: [{syscall, duration_ms, stack}]}]   in the analysis' order
//   blocking_calls  [{stack, syscall, count, total_ms, max_ms, p50_ms, p99_ms}]   total desc
//   loop            {iterations, busy_ms, idle_ms, per_thread: [{thread, iterations, busy_ms, idle_ms}]}
//
// Milliseconds are rounded to 3 decimals (seconds too). Strings are valid UTF-8 (invalid
// sequences become U+FFFD). Keys keep this order and the text is indented by 2, ending with a
// newline, so the same profile always gives the same bytes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "recording/profile.hpp"
#include "reports/loop_analysis.hpp"
#include "reports/process_dump.hpp"
#include "reports/task_summary.hpp"

namespace loopspy {

/// Nanoseconds as milliseconds rounded to 3 decimals.
double rounded_ms(Nanoseconds ns);

nlohmann::ordered_json loop_report_json(const Profile& profile, const LoopAnalysis& analysis);

/// The "tasks" array of the report.
nlohmann::ordered_json tasks_json(const std::vector<TaskSummary>& tasks);

/// The report as text; with `tasks`, its "tasks" array too.
std::string render_json_report(const Profile& profile, const LoopAnalysis& analysis,
                               const std::vector<TaskSummary>* tasks = nullptr);

/// `dump --json` (fields in the README).
std::string render_dump_json(const ProcessDump& dump);
/// `dump --subprocesses --json`: an array, one dump object per process.
std::string render_dumps_json(const std::vector<ProcessDump>& dumps);

}  // namespace loopspy
