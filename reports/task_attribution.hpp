// Which asyncio task each sample ran in, and the tasks above it, decided from the recording's
// task snapshots (recording/profile.hpp: TaskSnapshot) and each sample's coroutine.
//
// A sample's coroutine C (the object behind its outermost coroutine frame) belongs to task X
// when X drove C and either the sample lies within the span X was seen with C (between the
// first and the last snapshot that listed it), or X was seen during the sample's step: the run
// of samples of that thread with the same coroutine, bounded by the thread's selector waits.
// Within either span the coroutine cannot have been freed and its address reused by another
// task's coroutine, so a sample is never charged to a dead task's successor. X's coroutine name
// must also equal the sample's outermost coroutine frame. Samples matching no task have none.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "recording/profile.hpp"
#include "reports/stacks.hpp"

namespace loopspy {

inline constexpr std::string_view kTaskFramePrefix = "<task> ";

class TaskAttribution {
public:
    explicit TaskAttribution(const Profile& profile);

    /// Whether the recording has any task snapshot.
    bool has_tasks() const { return !profile_.task_snapshots().empty(); }
    /// The task sample `index` (into profile.samples()) ran in.
    std::optional<TaskId> task_of(std::size_t index) const;
    /// Whether two ids are one task: the same record, or records of one task (its process,
    /// address and name), as the kernel's record of a task and the snapshots' can be.
    bool same_task(TaskId a, TaskId b) const;
    /// The task's name.
    std::string_view name(TaskId task) const;

    /// The frames above the task at time `t`, root first: for each awaiting task "<task> NAME"
    /// and its suspended await chain (outermost first), ending with "<task> NAME" of `task`
    /// itself. A task awaited by several tasks is shown under the one with the lowest id and its
    /// frame says so: "<task> NAME (awaited by 3 tasks)".
    std::vector<std::string> async_prefix(TaskId task, Nanoseconds t) const;

    /// Where `stack`'s frames belong to the task: the index of its outermost coroutine frame
    /// (frames before it are the event loop's), or 0 when it has none.
    std::size_t task_frames_begin(StackId stack) const;

    /// --tasks: wall time of each task while suspended, within [from, to). Each snapshot's state
    /// holds until the next one; of that span, the time the task's samples say it ran is running,
    /// the rest waiting (for a span that began with the task running: where the nearest snapshot
    /// found it waiting). So running and waiting add up to the time it was seen alive.
    struct Suspension {
        TaskId task;
        StackId stack;      // the await chain, outermost first, ending "<awaiting TYPE>"
        Nanoseconds time;   // suspended there for this long
    };
    std::vector<Suspension> suspensions(Nanoseconds from, Nanoseconds to) const;

private:
    struct Version {
        Nanoseconds from;  // the snapshot that made this entry current
        TaskEntry entry;
    };
    struct Seen {
        Nanoseconds first{INT64_MAX}, last{INT64_MIN};
        std::vector<Version> versions;  // in time order
    };
    const TaskEntry* entry_at(TaskId task, Nanoseconds t) const;
    const TaskEntry* suspended_entry_near(TaskId task, Nanoseconds t) const;
    void resolve_samples();

    const Profile& profile_;
    std::vector<Seen> seen_;  // by TaskId
    std::map<Pid, std::vector<Nanoseconds>> snapshot_times_;  // each process's snapshots, in order
    static constexpr TaskId kNoTask = ~TaskId{0};
    std::vector<TaskId> sample_task_;  // by sample index; kNoTask where none was found
};

}  // namespace loopspy
