// Keeps the recording's view of the target's asyncio tasks: takes task snapshots (every task, its
// state, its await chain, who awaits it) at a bounded rate, and sooner when samples show a
// coroutine the last snapshot did not know, and adds them to the profile as deltas.
#pragma once

#include <chrono>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "recording/profile.hpp"
#include "symbolizer/asyncio/asyncio_tasks.hpp"
#include "symbolizer/asyncio/coroutine_chain.hpp"
#include "symbolizer/frames/stack_resolver.hpp"

namespace loopspy {

struct TaskTrackerOptions {
    /// Periodic snapshots per second (for the suspended tasks' wall time); 0 turns tasks off.
    double rate_hz = 10;
    /// A snapshot asked for by an unknown coroutine waits at least this long after the previous one.
    std::chrono::milliseconds min_gap{10};
    /// Snapshots may use at most this share of wall time (their cost stretches the gaps).
    double max_duty = 0.02;
};

class TaskTracker {
public:
    TaskTracker(const RemoteMemory& memory, const Interpreter& interp, CodeSymbolizer& symbolizer,
                StackResolver& resolver, Profile& profile, const TaskTrackerOptions& options);

    bool enabled() const { return options_.rate_hz > 0; }
    /// A sample ran the coroutine `coro` (0: none).
    void saw_coro(std::uint64_t coro) {
        if (coro != 0 && !known_coros_.count(coro)) wanted_ = true;
    }
    /// Takes a snapshot if one is due. `now` is CLOCK_MONOTONIC.
    void tick(Nanoseconds now);
    /// How long until tick() would take a periodic snapshot (zero if one is due; a day when
    /// snapshots are off), so the recorder wakes in time for rates above its poll rate.
    Nanoseconds until_due(Nanoseconds now) const;
    /// Takes a snapshot now, whatever the rate.
    void snapshot(Nanoseconds now);

    /// How the kernel side can find the running task at each sample, once asyncio is found.
    std::optional<TaskFinder> task_finder() const { return reader_ ? reader_->task_finder() : std::nullopt; }

    std::uint64_t snapshots() const { return snapshots_; }
    Nanoseconds time_spent() const { return spent_; }
    std::uint64_t largest_task_count() const { return largest_; }
    /// Snapshots the target's memory refused (no snapshot was recorded for them: the tasks stay
    /// as last seen), and why the last one failed.
    std::uint64_t failed_snapshots() const { return failed_; }
    const std::string& last_failure() const { return last_failure_; }

private:
    TaskEntry entry_for(const RawTask& t, TaskId id, const std::unordered_map<std::uint64_t, TaskId>& by_addr);
    std::string_view coro_name(RemoteAddr coro);

    const RemoteMemory& memory_;
    const Interpreter& interp_;
    CodeSymbolizer& symbolizer_;
    StackResolver& resolver_;
    Profile& profile_;
    TaskTrackerOptions options_;
    std::unique_ptr<TaskReader> reader_;
    TypeNames types_;

    struct PairHash {
        std::size_t operator()(const std::pair<std::uint64_t, std::uint64_t>& p) const noexcept {
            return std::hash<std::uint64_t>()(p.first * 0x9E3779B97F4A7C15ull ^ p.second);
        }
    };
    std::unordered_map<TaskId, TaskEntry> last_;   // every task's entry as of the last snapshot
    /// (task, coroutine) addresses -> name and id, as of the last snapshot.
    std::unordered_map<std::pair<std::uint64_t, std::uint64_t>, std::pair<std::string, TaskId>, PairHash> ids_;
    std::unordered_set<std::uint64_t> known_coros_;
    std::unordered_map<std::uint64_t, std::string> coro_names_;  // coroutine address -> __qualname__
    bool wanted_ = true;
    Nanoseconds last_start_{0};
    Nanoseconds next_allowed_{0};
    std::uint64_t snapshots_ = 0;
    std::uint64_t failed_ = 0;
    std::string last_failure_;
    std::uint64_t largest_ = 0;
    Nanoseconds spent_{0};
    std::vector<ResolvedFrame> resolved_;
};

}  // namespace loopspy
