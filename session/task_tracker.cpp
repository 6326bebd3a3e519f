#include "session/task_tracker.hpp"

#include <time.h>

#include <algorithm>
#include <optional>
#include <cstdio>
#include <cstdlib>

#include "core/clock.hpp"
#include "session/frame_naming.hpp"
#include "symbolizer/frames/code_symbolizer.hpp"
#include "symbolizer/cpython/pystring.hpp"

namespace loopspy {
namespace {

// From this many tasks on, a snapshot's page-cache misses read 16 pages at a time.
constexpr std::size_t kManyTasks = 1000;

}  // namespace

TaskTracker::TaskTracker(const RemoteMemory& memory, const Interpreter& interp, CodeSymbolizer& symbolizer,
                         StackResolver& resolver, Profile& profile, const TaskTrackerOptions& options)
    : memory_(memory),
      interp_(interp),
      symbolizer_(symbolizer),
      resolver_(resolver),
      profile_(profile),
      options_(options),
      reader_(options.rate_hz > 0 ? make_task_reader(memory, interp) : nullptr),
      types_(memory, interp.layout) {}

void TaskTracker::tick(Nanoseconds now) {
    if (!reader_ || options_.rate_hz <= 0 || now < next_allowed_) return;
    const Nanoseconds period{static_cast<std::int64_t>(1e9 / options_.rate_hz)};
    const Nanoseconds min_gap{std::chrono::duration_cast<std::chrono::nanoseconds>(options_.min_gap).count()};
    bool due = now - last_start_ >= period || (wanted_ && now - last_start_ >= min_gap);
    if (due) snapshot(now);
}

Nanoseconds TaskTracker::until_due(Nanoseconds now) const {
    if (!reader_ || options_.rate_hz <= 0) return Nanoseconds{86'400'000'000'000};
    const Nanoseconds period{static_cast<std::int64_t>(1e9 / options_.rate_hz)};
    const Nanoseconds due = std::max(last_start_ + period, next_allowed_);
    return due > now ? due - now : Nanoseconds{0};
}

std::string_view TaskTracker::coro_name(RemoteAddr coro) {
    auto it = coro_names_.find(coro.value);
    if (it != coro_names_.end()) return it->second;
    std::string name;
    if (auto p = memory_.read_u64(RemoteAddr{coro.value + interp_.layout.gen_qualname}); p && *p) {
        std::vector<std::byte> bytes = memory_.read_prefix(RemoteAddr{*p}, 512);
        if (auto s = decode_pystring(bytes, unicode_layout_of(interp_.layout), 200)) name = std::move(*s);
    }
    return coro_names_.emplace(coro.value, std::move(name)).first->second;
}

TaskEntry TaskTracker::entry_for(const RawTask& t, TaskId id, const std::unordered_map<std::uint64_t, TaskId>& by_addr) {
    TaskEntry e;
    e.task = id;
    for (RemoteAddr a : t.awaited_by) {
        if (auto it = by_addr.find(a.value); it != by_addr.end() && it->second != id) e.awaited_by.push_back(it->second);
    }
    std::sort(e.awaited_by.begin(), e.awaited_by.end());
    e.awaited_by.erase(std::unique(e.awaited_by.begin(), e.awaited_by.end()), e.awaited_by.end());
    std::optional<CoroutineChain> chain;
    if (!t.done && t.coro.value != 0) chain = read_coroutine_chain(memory_, interp_.layout, types_, t.coro);
    TaskActivity activity = task_activity(t, chain ? &*chain : nullptr);
    if (activity == TaskActivity::Suspended || activity == TaskActivity::Created) {
        resolver_.resolve(chain->frames, resolved_);
        // Every frame of a suspended chain is a coroutine's (or generator's): another code (a
        // module body, a function) means the chain was read while it changed (an awaited object
        // freed and its memory reused): the task ran meanwhile. (A suspended chain read without
        // its own frame is already taken as running by read_coroutine_chain.)
        if (std::any_of(resolved_.begin(), resolved_.end(), [](const ResolvedFrame& f) { return f.code && !f.coroutine(); })) {
            activity = TaskActivity::Running;
        }
    }
    if (activity == TaskActivity::Done || activity == TaskActivity::Running) {
        e.state = activity == TaskActivity::Done ? TaskState::Done : TaskState::Running;
        e.stack = profile_.intern_stack({});
        return e;
    }
    e.state = TaskState::Suspended;
    std::vector<FrameId> frames;
    for (auto f = resolved_.rbegin(); f != resolved_.rend(); ++f) frames.push_back(intern_resolved(profile_, *f));
    std::string leaf;
    if (activity == TaskActivity::Created) {
        leaf = "<not started>";
    } else if (!chain->awaiting.empty()) {
        leaf = "<awaiting " + chain->awaiting + ">";
    }
    if (!leaf.empty()) frames.push_back(profile_.intern_frame(leaf, "", 0, kFrameSpecial));
    e.stack = profile_.intern_stack(frames);
    return e;
}

void TaskTracker::snapshot(Nanoseconds now) {
    if (!reader_) return;
    last_start_ = now;
    wanted_ = false;
    const Nanoseconds cpu_start = thread_cpu_time();
    // Tasks, their coroutines and frames share pages: each page is read once a snapshot (101
    // tasks: 1,150 reads and 3.2 ms object by object, 70 reads and 0.4 ms by page). Thousands of
    // tasks fill whole runs of pages, which are cheaper read 16 at a time (10,000 tasks: 24 ms
    // a snapshot, 30 ms page by page; the two cost the same at about 1,000).
    RemoteMemory::PageCacheScope cache(memory_, last_.size() >= kManyTasks ? 16 : 1);
    auto tasks = reader_->read_tasks();
    if (!tasks) {
        // Not an empty task set: no snapshot at all, counted and said at the end; tried again
        // after a second.
        ++failed_;
        last_failure_ = tasks.error().message;
        next_allowed_ = now + Nanoseconds{1'000'000'000};
        return;
    }
    std::unordered_map<TaskId, TaskEntry> current;
    {
        largest_ = std::max<std::uint64_t>(largest_, tasks->size());
        std::unordered_map<std::uint64_t, TaskId> by_addr;
        std::vector<TaskId> ids;
        ids.reserve(tasks->size());
        known_coros_.clear();
        decltype(ids_) ids_now;
        for (const RawTask& t : *tasks) {
            // The same task as last time (same addresses, same name) keeps its id without interning.
            TaskId id;
            auto known = ids_.find({t.addr.value, t.coro.value});
            if (known != ids_.end() && known->second.first == t.name) {
                id = known->second.second;
            } else {
                TaskRecord rec;
                rec.addr = t.addr.value;
                rec.coro = t.coro.value;
                rec.name = profile_.intern_task_string(t.name);
                rec.coro_name = profile_.intern_string(t.coro.value ? coro_name(t.coro) : std::string_view{});
                rec.pid = memory_.pid();
                id = profile_.intern_task(rec);
            }
            ids_now.emplace(std::make_pair(t.addr.value, t.coro.value), std::make_pair(t.name, id));
            ids.push_back(id);
            by_addr[t.addr.value] = id;
            if (t.coro.value) known_coros_.insert(t.coro.value);
        }
        for (std::size_t i = 0; i < tasks->size(); ++i) current.emplace(ids[i], entry_for((*tasks)[i], ids[i], by_addr));
        ids_ = std::move(ids_now);
        // Coroutine names are cached per address only while the coroutine is seen alive.
        if (coro_names_.size() > 4 * known_coros_.size() + 1024) {
            std::erase_if(coro_names_, [&](const auto& kv) { return !known_coros_.count(kv.first); });
        }
    }
    TaskSnapshot snap;
    snap.time = now;
    snap.pid = memory_.pid();
    for (const auto& [id, e] : last_) {
        if (!current.count(id)) snap.removed.push_back(id);
    }
    for (const auto& [id, e] : current) {
        auto it = last_.find(id);
        if (it == last_.end() || !(it->second == e)) snap.changed.push_back(e);
    }
    std::sort(snap.removed.begin(), snap.removed.end());
    std::sort(snap.changed.begin(), snap.changed.end(), [](const TaskEntry& a, const TaskEntry& b) { return a.task < b.task; });
    // Kept even when nothing changed: each snapshot's time says every task was still there.
    profile_.add_task_snapshot(std::move(snap));
    last_ = std::move(current);
    ++snapshots_;
    // What a snapshot costs is loopspy's CPU time: on a busy machine its wall time also counts
    // the time it waited for a CPU, which costs the target nothing.
    Nanoseconds cost = thread_cpu_time() - cpu_start;
    spent_ += cost;
    if (std::getenv("LOOPSPY_DEBUG_TASKS")) {
        std::fprintf(stderr, "loopspy: task snapshot %llu at %.3f s: %zu tasks in %.2f ms, %llu reads:",
                     static_cast<unsigned long long>(snapshots_), now.seconds(), last_.size(), cost.ms(),
                     static_cast<unsigned long long>(memory_.reads()));
        if (tasks && tasks->size() <= 20) {
            for (const RawTask& t : *tasks) std::fprintf(stderr, " %s", t.name.c_str());
        }
        std::fprintf(stderr, "\n");
    }
    // The first snapshot also names every code object it meets, once: it does not set the pace.
    if (snapshots_ > 1) {
        next_allowed_ = now + Nanoseconds{static_cast<std::int64_t>(static_cast<double>(cost.value) / options_.max_duty)};
    }
}

}  // namespace loopspy
