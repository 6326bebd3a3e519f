#include "session/frame_naming.hpp"

namespace loopspy {

FrameName name_of(const ResolvedFrame& f) {
    if (!f.code) return {kUnknownFrame, "", 0, kFrameSpecial};
    return {f.code->qualname, f.code->filename, f.line, f.coroutine() ? kFrameCoroutine : 0u};
}

FrameId intern_resolved(Profile& profile, const ResolvedFrame& f) {
    const FrameName n = name_of(f);
    return profile.intern_frame(n.name, n.file, n.line, n.flags);
}

TaskActivity task_activity(const RawTask& task, const CoroutineChain* chain) {
    if (task.done || task.coro.value == 0 || !chain) return TaskActivity::Done;
    switch (chain->state) {
        case CoroutineState::Executing: return TaskActivity::Running;
        // A coroutine that has returned, of a task not marked done yet (its last step is setting
        // its result): its life is over.
        case CoroutineState::Finished: return TaskActivity::Done;
        case CoroutineState::Created: return TaskActivity::Created;
        default: return TaskActivity::Suspended;
    }
}

}  // namespace loopspy
