// How a resolved frame is named in every output, in one place: its code object's qualname, file
// and line, or "<unknown>" when it could not be named; and how a task's state is told from its
// coroutine chain.
#pragma once

#include <string>
#include <string_view>

#include "recording/profile.hpp"
#include "symbolizer/asyncio/asyncio_tasks.hpp"
#include "symbolizer/asyncio/coroutine_chain.hpp"
#include "symbolizer/frames/stack_resolver.hpp"

namespace loopspy {

inline constexpr std::string_view kUnknownFrame = "<unknown>";

struct FrameName {
    std::string_view name, file;
    int line = 0;
    std::uint32_t flags = 0;  // kFrameCoroutine, kFrameSpecial
};

FrameName name_of(const ResolvedFrame& f);

/// The frame's id in `profile`, interned under its name.
FrameId intern_resolved(Profile& profile, const ResolvedFrame& f);

/// What a task is doing, as loopspy states it everywhere: done (finished, its coroutine returned,
/// or no coroutine),
/// running (its coroutine executing), created (never started: a suspended task with nothing
/// awaited yet) or suspended.
enum class TaskActivity { Done, Running, Created, Suspended };
TaskActivity task_activity(const RawTask& task, const CoroutineChain* chain);

}  // namespace loopspy
