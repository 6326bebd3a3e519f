// For --tasks: for every asyncio task, how long it ran and how long it waited, and on what. Running
// time comes from the samples attributed to it; waiting time from the task snapshots (each
// snapshot's state holds until the next), so a task that waits on a slow server shows up even
// while the loop is idle.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "recording/profile.hpp"
#include "reports/loop_analysis.hpp"
#include "reports/task_attribution.hpp"

namespace loopspy {

struct TaskWait {
    std::vector<std::string> stack;  // the await chain, outermost first, ending "<awaiting TYPE>"
    /// Where it waits, said short: the chain down to the program's own innermost frame (runs of
    /// one frame folded: "chain (app.py:9) ×40"), the call into the library it awaits there
    /// (asyncio's internals below it left out), and what is awaited.
    std::vector<std::string> where;
    std::optional<std::string> culprit;  // the program's own innermost frame, when there is one
    Nanoseconds time;
};

struct TaskSummary {
    std::string name;
    std::uint64_t id = 0;   // the Task object's address
    Pid pid;                // the process it lived in
    Nanoseconds running;    // samples attributed to it (on-CPU, and off-CPU outside the selector)
    Nanoseconds suspended;  // snapshots that found it suspended
    std::vector<TaskWait> waits;  // longest first
};

/// Every task seen in the window, by suspended + running time, longest first. Suspended time
/// leaves out what the task ran (its samples) between the snapshots that found it suspended. Tasks with the same
/// name and address seen with different coroutines (a reused address) stay separate.
std::vector<TaskSummary> summarize_tasks(const Profile& profile, const TaskAttribution& tasks, const TimeWindow& window,
                                         const CulpritRules& culprit = CulpritRules{});

}  // namespace loopspy
