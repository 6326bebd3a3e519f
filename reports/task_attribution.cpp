#include "reports/task_attribution.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "core/sorting.hpp"

namespace loopspy {
namespace {

// Consecutive on-CPU samples of one coroutine further apart than this many periods are not
// taken as one step of it.
constexpr std::int64_t kStepGapPeriods = 3;

}  // namespace

TaskAttribution::TaskAttribution(const Profile& profile) : profile_(profile), seen_(profile.tasks().size()) {
    // Each process's snapshots are a chain of deltas of their own.
    struct Chain {
        std::unordered_map<TaskId, TaskEntry> state;
        Nanoseconds previous{INT64_MIN};
    };
    std::map<Pid, Chain> chains;
    for (const TaskSnapshot& snap : profile.task_snapshots()) {
        snapshot_times_[snap.pid].push_back(snap.time);
        Chain& c = chains[snap.pid];
        for (TaskId id : snap.removed) {
            if (c.state.erase(id) && id < seen_.size()) seen_[id].last = c.previous;
        }
        for (const TaskEntry& e : snap.changed) {
            if (e.task >= seen_.size()) continue;
            c.state[e.task] = e;
            Seen& s = seen_[e.task];
            s.versions.push_back({snap.time, e});
            s.first = std::min(s.first, snap.time);
        }
        c.previous = snap.time;
    }
    for (const auto& [pid, c] : chains) {
        for (const auto& [id, e] : c.state) seen_[id].last = c.previous;
    }
    resolve_samples();
    // The task the kernel found running the sample's coroutine at that very instant is the one:
    // the snapshots' record of it when they tell the same task (its address and name), else the
    // kernel's own record (a task that came and went between two snapshots, or a dead task's
    // address and coroutine reused by a new one, which the snapshots would give the dead one).
    const auto& samples = profile.samples();
    using Identity = std::tuple<std::int32_t, std::uint64_t, std::uint64_t, std::string_view>;
    std::map<Identity, TaskId> snapshotted;  // (pid, task, coroutine, name) -> a record the snapshots saw
    for (TaskId id = 0; id < seen_.size(); ++id) {
        if (seen_[id].versions.empty()) continue;
        const TaskRecord& t = profile.tasks()[id];
        snapshotted.try_emplace({t.pid.value, t.addr, t.coro, profile.string(t.name)}, id);
    }
    for (std::size_t i = 0; i < samples.size() && i < sample_task_.size(); ++i) {
        const std::uint32_t captured = samples[i].task;
        if (captured == 0 || captured > profile.tasks().size()) continue;
        const TaskRecord& c = profile.tasks()[captured - 1];
        if (sample_task_[i] != kNoTask) {
            const TaskRecord& s = profile.tasks()[sample_task_[i]];
            if (s.addr == c.addr && s.pid == c.pid && profile.string(s.name) == profile.string(c.name)) continue;
        }
        auto same = snapshotted.find({c.pid.value, c.addr, c.coro, profile.string(c.name)});
        sample_task_[i] = same != snapshotted.end() ? same->second : captured - 1;
    }
}

std::string_view TaskAttribution::name(TaskId task) const {
    if (task >= profile_.tasks().size()) return {};
    return profile_.string(profile_.tasks()[task].name);
}

bool TaskAttribution::same_task(TaskId a, TaskId b) const {
    if (a == b) return true;
    const auto& t = profile_.tasks();
    if (a >= t.size() || b >= t.size()) return false;
    return t[a].pid == t[b].pid && t[a].addr == t[b].addr && profile_.string(t[a].name) == profile_.string(t[b].name);
}

std::optional<TaskId> TaskAttribution::task_of(std::size_t index) const {
    if (index >= sample_task_.size() || sample_task_[index] == kNoTask) return std::nullopt;
    return sample_task_[index];
}

const TaskEntry* TaskAttribution::entry_at(TaskId task, Nanoseconds t) const {
    if (task >= seen_.size() || seen_[task].versions.empty()) return nullptr;
    const auto& v = seen_[task].versions;
    auto it = std::upper_bound(v.begin(), v.end(), t, [](Nanoseconds x, const Version& ver) { return x < ver.from; });
    if (it == v.begin()) return &v.front().entry;
    return &std::prev(it)->entry;
}

const TaskEntry* TaskAttribution::suspended_entry_near(TaskId task, Nanoseconds t) const {
    // An awaiting task is suspended while the task it awaits runs. If the snapshot before `t`
    // caught it still running (it had not reached its await yet), the next one shows where it waits.
    const TaskEntry* e = entry_at(task, t);
    if (!e || e->state == TaskState::Suspended) return e;
    for (const Version& v : seen_[task].versions) {
        if (v.from > t && v.entry.state == TaskState::Suspended) return &v.entry;
    }
    return e;
}

std::size_t TaskAttribution::task_frames_begin(StackId stack) const {
    auto frames = profile_.stack(stack);
    for (std::size_t i = 0; i < frames.size(); ++i) {
        const FrameRecord& f = profile_.frame(frames[i]);
        if ((f.flags & kFrameCoroutine) && !(f.flags & kFrameSpecial)) return i;
    }
    return 0;
}

void TaskAttribution::resolve_samples() {
    const auto& samples = profile_.samples();
    sample_task_.assign(samples.size(), kNoTask);
    if (!has_tasks()) return;
    // A coroutine address means something only in its own process.
    std::map<std::pair<Pid, std::uint64_t>, std::vector<TaskId>> by_coro;
    for (TaskId id = 0; id < profile_.tasks().size(); ++id) {
        const TaskRecord& t = profile_.tasks()[id];
        if (!seen_[id].versions.empty()) by_coro[{t.pid, t.coro}].push_back(id);
    }
    // Each thread's events in time order, and its selector waits.
    // Each vector is counted first and allocated once: on a long recording these are large.
    std::map<Tid, std::vector<std::uint32_t>> per_thread;  // sample indices (a recording holds < 4G samples)
    std::map<Tid, std::vector<std::pair<Nanoseconds, Nanoseconds>>> waits;
    {
        std::map<Tid, std::pair<std::size_t, std::size_t>> counts;
        for (const SampleRecord& s : samples) ++counts[s.tid].first;
        for (const SelectorWait& w : profile_.selector_waits()) ++counts[w.tid].second;
        for (const auto& [tid, n] : counts) {
            per_thread[tid].reserve(n.first);
            waits[tid].reserve(n.second);
        }
    }
    for (std::size_t i = 0; i < samples.size(); ++i) {
        per_thread[samples[i].tid].push_back(static_cast<std::uint32_t>(i));
    }
    for (const SelectorWait& w : profile_.selector_waits()) waits[w.tid].emplace_back(w.enter, w.leave);
    for (auto& [tid, v] : waits) stable_sort_unless_sorted(v.begin(), v.end(), std::less<>());
    const std::int64_t period = profile_.info.rate_hz > 0 ? 1'000'000'000 / profile_.info.rate_hz : 1'000'000;

    for (auto& [tid, idx] : per_thread) {
        const Pid pid = profile_.process_of(tid);
        stable_sort_unless_sorted(idx.begin(), idx.end(), [&](std::uint32_t a, std::uint32_t b) { return samples[a].time < samples[b].time; });
        const auto& thread_waits = waits[tid];
        // The first of the thread's waits that enters after `t`: a cursor, as `t` moves mostly forward.
        std::size_t wait_cursor = 0;
        auto first_wait_after = [&](Nanoseconds t) {
            while (wait_cursor < thread_waits.size() && thread_waits[wait_cursor].first <= t) ++wait_cursor;
            while (wait_cursor > 0 && thread_waits[wait_cursor - 1].first > t) --wait_cursor;
            return wait_cursor;
        };
        // Runs of consecutive samples of one coroutine with no selector wait and no long gap between.
        std::size_t run_begin = 0;
        while (run_begin < idx.size()) {
            const SampleRecord& first = samples[idx[run_begin]];
            std::size_t run_end = run_begin + 1;
            Nanoseconds end = first.kind == SampleKind::OffCpu ? first.time + first.weight : first.time;
            while (run_end < idx.size()) {
                const SampleRecord& s = samples[idx[run_end]];
                if (s.coro != first.coro || s.time.value - end.value > kStepGapPeriods * period) break;
                // A selector wait between them ends the step.
                std::size_t w = first_wait_after(end);
                if (w < thread_waits.size() && thread_waits[w].first < s.time) break;
                end = std::max(end, s.kind == SampleKind::OffCpu ? s.time + s.weight : s.time);
                ++run_end;
            }
            if (first.coro != 0) {
                auto candidates = by_coro.find({pid, first.coro});
                if (candidates != by_coro.end()) {
                    std::string_view outer;
                    auto frames = profile_.stack(first.stack);
                    std::size_t b = task_frames_begin(first.stack);
                    if (b < frames.size()) outer = profile_.string(profile_.frame(frames[b]).name);
                    // Several records can fit one coroutine (a task renamed, a name read once
                    // without its coroutine's): they are one task if they share the name.
                    std::optional<TaskId> found;
                    bool ambiguous = false;
                    for (TaskId id : candidates->second) {
                        const TaskRecord& t = profile_.tasks()[id];
                        std::string_view coro_name = profile_.string(t.coro_name);
                        if (!coro_name.empty() && coro_name != outer) continue;
                        if (seen_[id].first <= end && seen_[id].last >= first.time) {
                            if (found && profile_.tasks()[*found].name != t.name) ambiguous = true;
                            if (!found) found = id;
                        }
                    }
                    if (found && !ambiguous) {
                        for (std::size_t k = run_begin; k < run_end; ++k) sample_task_[idx[k]] = *found;
                    }
                }
            }
            run_begin = run_end;
        }
    }
}

std::vector<std::string> TaskAttribution::async_prefix(TaskId task, Nanoseconds t) const {
    struct Link {
        TaskId task;
        std::size_t awaiters;
    };
    std::vector<Link> links;  // innermost first
    std::set<TaskId> visited;
    TaskId cur = task;
    for (int depth = 0; depth < 64 && visited.insert(cur).second; ++depth) {
        const TaskEntry* e = entry_at(cur, t);
        std::size_t n = e ? e->awaited_by.size() : 0;
        links.push_back({cur, n});
        if (n == 0) break;
        cur = *std::min_element(e->awaited_by.begin(), e->awaited_by.end());
    }
    std::vector<std::string> out;
    for (auto l = links.rbegin(); l != links.rend(); ++l) {
        std::string frame = std::string(kTaskFramePrefix) + std::string(name(l->task));
        if (l->awaiters > 1) frame += " (awaited by " + std::to_string(l->awaiters) + " tasks)";
        out.push_back(std::move(frame));
        if (l->task == task) break;
        if (const TaskEntry* e = suspended_entry_near(l->task, t)) {
            for (FrameId f : profile_.stack(e->stack)) {
                if (profile_.frame(f).flags & kFrameSpecial) continue;  // <awaiting ...>: the next task says what
                out.push_back(profile_.format_frame(f));
            }
        }
    }
    return out;
}

namespace {

/// The time a task ran, as its samples say: each on-CPU sample stands for its weight at its
/// instant, each off-CPU interval (outside a selector) for its span.
class RunningTime {
public:
    void add(Nanoseconds begin, Nanoseconds end) { spans_.push_back({begin, end}); }
    /// Call once every span is added, before asking.
    void finish() {
        std::sort(spans_.begin(), spans_.end());
        for (const auto& [b, e] : spans_) longest_ = std::max(longest_, e - b);
    }
    /// How much of [lo, hi) it ran.
    Nanoseconds within(Nanoseconds lo, Nanoseconds hi) const {
        Nanoseconds ran{0};
        for (auto it = first_reaching(lo); it != spans_.end() && it->first < hi; ++it) {
            Nanoseconds b = std::max(it->first, lo), e = std::min(it->second, hi);
            if (e > b) ran += e - b;
        }
        return ran;
    }
    /// Where the first span that reaches into [lo, hi) begins (lo if it began before).
    std::optional<Nanoseconds> first_in(Nanoseconds lo, Nanoseconds hi) const {
        for (auto it = first_reaching(lo); it != spans_.end() && it->first < hi; ++it) {
            if (it->second > lo) return std::max(it->first, lo);
        }
        return std::nullopt;
    }

private:
    using Span = std::pair<Nanoseconds, Nanoseconds>;
    /// Spans are short (a sample's period, one blocking call): none that begins before
    /// lo - longest can reach lo.
    std::vector<Span>::const_iterator first_reaching(Nanoseconds lo) const {
        return std::lower_bound(spans_.begin(), spans_.end(), Span{lo - longest_, Nanoseconds{INT64_MIN}});
    }

    std::vector<Span> spans_;
    Nanoseconds longest_{0};
};

/// The usual time between two snapshots of a process (their median gap).
Nanoseconds typical_gap(const std::vector<Nanoseconds>& times) {
    std::vector<Nanoseconds> gaps;
    for (std::size_t i = 1; i < times.size(); ++i) gaps.push_back(times[i] - times[i - 1]);
    std::nth_element(gaps.begin(), gaps.begin() + static_cast<std::ptrdiff_t>(gaps.size() / 2), gaps.end());
    return gaps[gaps.size() / 2];
}

}  // namespace

std::vector<TaskAttribution::Suspension> TaskAttribution::suspensions(Nanoseconds from, Nanoseconds to) const {
    std::map<std::pair<TaskId, StackId>, Nanoseconds> total;
    static const std::vector<Nanoseconds> kNone;
    // A snapshot's state holds until the next one, but a task found suspended may run before
    // then (a worker that yields every few milliseconds): what it ran is not waiting, so a task's
    // running and waiting time never add up to more than it lived.
    std::map<TaskId, RunningTime> running;
    const auto& samples = profile_.samples();
    for (std::size_t i = 0; i < samples.size(); ++i) {
        auto id = task_of(i);
        if (!id) continue;
        const SampleRecord& s = samples[i];
        running[*id].add(s.time, s.time + s.weight);
    }
    for (auto& [id, r] : running) r.finish();
    for (TaskId id = 0; id < seen_.size(); ++id) {
        const Seen& s = seen_[id];
        if (s.versions.empty()) continue;
        auto times_it = snapshot_times_.find(profile_.tasks()[id].pid);
        const std::vector<Nanoseconds>& times = times_it == snapshot_times_.end() ? kNone : times_it->second;
        Nanoseconds end = profile_.info.end > profile_.info.start ? profile_.info.end
                          : times.empty()                          ? Nanoseconds{}
                                                                   : times.back();
        // Seen in the last snapshot, it lived on at most until the one that would have come
        // next: the recording may end well after (the process exited, its last snapshots failed).
        if (times.size() >= 2 && s.last >= times.back()) end = std::min(end, s.last + typical_gap(times));
        const RunningTime* ran = nullptr;
        if (auto r = running.find(id); r != running.end()) ran = &r->second;
        auto waiting = [&](std::size_t j) { return s.versions[j].entry.state == TaskState::Suspended; };
        auto next_waiting = [&](std::size_t k) -> const TaskEntry* {
            for (std::size_t j = k + 1; j < s.versions.size(); ++j) {
                if (waiting(j)) return &s.versions[j].entry;
            }
            return nullptr;
        };
        auto previous_waiting = [&](std::size_t k) -> const TaskEntry* {
            for (std::size_t j = k; j-- > 0;) {
                if (waiting(j)) return &s.versions[j].entry;
            }
            return nullptr;
        };
        for (std::size_t k = 0; k < s.versions.size(); ++k) {
            const TaskEntry& e = s.versions[k].entry;
            if (e.state == TaskState::Done) continue;
            Nanoseconds b = s.versions[k].from;
            // Holds until the next version, or until the snapshot after the last one it was seen in.
            Nanoseconds until = k + 1 < s.versions.size() ? s.versions[k + 1].from : s.last;
            if (k + 1 == s.versions.size()) {
                auto next = std::upper_bound(times.begin(), times.end(), s.last);
                until = next != times.end() ? *next : std::max(s.last, end);
            }
            Nanoseconds lo = std::max(b, from), hi = std::min(until, to);
            if (hi <= lo) continue;
            // Until it first runs it waits where this snapshot found it; once it has run, where
            // the next snapshot that found it waiting did (a worker that yields every few
            // milliseconds, caught not yet started, has started by then).
            const TaskEntry* here = e.state == TaskState::Suspended ? &e : nullptr;
            const TaskEntry* after = next_waiting(k);
            if (!after) after = here ? here : previous_waiting(k);
            std::optional<Nanoseconds> first = ran ? ran->first_in(lo, hi) : std::nullopt;
            if (!first) {
                if (const TaskEntry* w = here ? here : after) total[{id, w->stack}] += hi - lo;
                continue;
            }
            if (here && *first > lo) total[{id, here->stack}] += *first - lo;
            if (!after) continue;  // never seen waiting: it ran all along
            Nanoseconds rest = hi - *first, busy = ran->within(*first, hi);
            if (rest > busy) total[{id, after->stack}] += rest - busy;
        }
    }
    std::vector<Suspension> out;
    for (const auto& [key, t] : total) out.push_back({key.first, key.second, t});
    return out;
}

}  // namespace loopspy
