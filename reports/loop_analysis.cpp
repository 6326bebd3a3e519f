#include "reports/loop_analysis.hpp"

#include <fnmatch.h>

#include <cctype>

#include "reports/task_attribution.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "core/sorting.hpp"
#include "reports/syscalls.hpp"

namespace loopspy {

namespace {

constexpr Nanoseconds kForever{std::numeric_limits<std::int64_t>::max()};

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Nanoseconds seconds_to_ns(double s) {
    const double ns = s * 1e9;
    if (!(ns < 9e18)) return kForever;  // also NaN
    if (ns < -9e18) return Nanoseconds{std::numeric_limits<std::int64_t>::min() / 2};
    return Nanoseconds{static_cast<std::int64_t>(std::llround(ns))};
}

bool is_off_cpu(const SampleRecord& s) { return s.kind == SampleKind::OffCpu; }
// Time spent waiting in the selector is idle, not blocking (the kernel does not emit it; if a
// recording ever carries it, it is left out like the selector waits' own time).
Nanoseconds sample_end(const SampleRecord& s) { return is_off_cpu(s) ? s.time + s.weight : s.time; }

enum FrameClass : std::uint8_t {
    kLoopFrame = 1,       // is_loop_frame
    kHandleRunFrame = 2,  // Handle._run in asyncio/events.py
    kRunOnceFrame = 4,    // BaseEventLoop._run_once
    kSkippedFrame = 8,    // a task-step or Context.run frame between Handle._run and the callback
};

/// An asyncio method's qualified name ("BaseEventLoop._run_once"). Before 3.11 a code object has
/// no qualified name, so frames carry the bare one ("_run_once"): that counts in the module that
/// defines the method.
bool is_asyncio_method(std::string_view name, std::string_view file, std::string_view qualified,
                       std::string_view module_file) {
    if (name == qualified) return true;
    const std::size_t dot = qualified.rfind('.');
    return dot != std::string_view::npos && name == qualified.substr(dot + 1) && ends_with(file, module_file);
}

std::uint8_t classify_frame(const Profile& profile, FrameId id) {
    const FrameRecord& f = profile.frame(id);
    if (f.flags & kFrameSpecial) return 0;
    std::string_view name = profile.string(f.name);
    const std::string_view file = profile.string(f.file);
    // Bare names (before 3.11) of the loop's methods, qualified as 3.11+ names them.
    constexpr std::string_view kBaseEvents = "asyncio/base_events.py";
    for (std::string_view q : {"BaseEventLoop._run_once", "BaseEventLoop.run_forever", "BaseEventLoop.run_until_complete"}) {
        if (is_asyncio_method(name, file, q, kBaseEvents)) name = q;
    }
    if (is_asyncio_method(name, file, "Handle._run", "asyncio/events.py")) name = "Handle._run";
    if (is_asyncio_method(name, file, "Task.__step", "asyncio/tasks.py")) name = "Task.__step";
    std::uint8_t c = 0;
    if (name == "BaseEventLoop._run_once" || name == "BaseEventLoop.run_forever" ||
        name == "BaseEventLoop.run_until_complete" || name == "Runner.run" ||
        (name == "run" && ends_with(file, "asyncio/runners.py")) || file.find("/uvloop/") != std::string_view::npos) {
        c |= kLoopFrame;
    }
    if (name == "BaseEventLoop._run_once") c |= kRunOnceFrame;
    if (name == "Handle._run" && ends_with(file, "asyncio/events.py")) c |= kHandleRunFrame;
    if (name == "Task.__step" || name == "Task.__step_run_and_handle_result" || name == "Task._Task__step" ||
        name == "Task._Task__step_run_and_handle_result" || name == "Context.run") {
        c |= kSkippedFrame;
    }
    return c;
}

/// classify_frame, computed once per frame.
class FrameClasses {
public:
    explicit FrameClasses(const Profile& profile) : profile_(profile), classes_(profile.frame_count(), kUnknown) {}

    std::uint8_t of(FrameId id) {
        std::uint8_t& c = classes_[id];
        if (c == kUnknown) c = classify_frame(profile_, id);
        return c;
    }

private:
    static constexpr std::uint8_t kUnknown = 0x80;
    const Profile& profile_;
    std::vector<std::uint8_t> classes_;
};

/// The callback identity of each stack (see find_slow_callbacks), computed once per stack.
class Identities {
public:
    explicit Identities(const Profile& profile)
        : profile_(profile), classes_(profile), memo_(profile.stack_count(), kUnknown) {}

    /// The identity frame of a stack, or -1.
    std::int64_t frame_of(StackId stack) {
        std::int64_t& m = memo_[stack];
        if (m == kUnknown) m = compute(stack);
        return m;
    }

    /// Identities compare by qualname and file, so a callback stays one while its line moves.
    std::uint64_t key_of(FrameId frame) const {
        const FrameRecord& f = profile_.frame(frame);
        return (static_cast<std::uint64_t>(f.name) << 32) | f.file;
    }

private:
    static constexpr std::int64_t kUnknown = -2;

    std::int64_t compute(StackId stack) {
        const std::span<const FrameId> frames = profile_.stack(stack);
        const std::size_t n = frames.size();
        // The innermost Handle._run.
        for (std::size_t i = n; i-- > 0;) {
            if (!(classes_.of(frames[i]) & kHandleRunFrame)) continue;
            for (std::size_t j = i + 1; j < n; ++j) {
                if (!(classes_.of(frames[j]) & kSkippedFrame)) return frames[j];
            }
            return frames[i];  // a native callback: nothing of it in Python
        }
        std::size_t last_loop = n;
        std::size_t run_once = n;
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint8_t c = classes_.of(frames[i]);
            if (c & kRunOnceFrame) run_once = i;
            if (c & kLoopFrame) last_loop = i;
        }
        // The stdlib loop's own work between callbacks (the selector's Python side, waiting for
        // the GIL after the wait, ready-queue handling): an identity of its own.
        if (run_once < n) return frames[run_once];
        for (std::size_t i = 0; i < n; ++i) {
            const FrameRecord& f = profile_.frame(frames[i]);
            if ((f.flags & kFrameCoroutine) && !(f.flags & kFrameSpecial)) return frames[i];
        }
        if (last_loop < n) {
            // Nothing after the loop's frames: a native loop's own work.
            return last_loop + 1 < n ? frames[last_loop + 1] : frames[last_loop];
        }
        return -1;
    }

    const Profile& profile_;
    FrameClasses classes_;
    std::vector<std::int64_t> memo_;
};

/// A thread's samples in time order (off-CPU intervals by when they began).
struct Timeline {
    std::vector<const SampleRecord*> samples;
    Nanoseconds longest_off;  // the longest off-CPU interval, to find those that began earlier
};

std::unordered_map<Tid, Timeline> timelines(const Profile& profile, const std::vector<Tid>& threads) {
    std::unordered_map<Tid, Timeline> out;
    std::unordered_map<Tid, std::size_t> counts;  // counted first: one allocation a thread
    for (Tid t : threads) counts[t] = 0;
    for (const SampleRecord& s : profile.samples()) {
        if (auto it = counts.find(s.tid); it != counts.end()) ++it->second;
    }
    for (const auto& [tid, n] : counts) out[tid].samples.reserve(n);
    for (const SampleRecord& s : profile.samples()) {
        auto it = out.find(s.tid);
        if (it == out.end()) continue;
        it->second.samples.push_back(&s);
        if (is_off_cpu(s)) it->second.longest_off = std::max(it->second.longest_off, s.weight);
    }
    for (auto& [tid, tl] : out) {
        stable_sort_unless_sorted(tl.samples.begin(), tl.samples.end(),
                                  [](const SampleRecord* a, const SampleRecord* b) { return a->time < b->time; });
    }
    return out;
}

}  // namespace

std::vector<const SelectorWait*> waits_of(const Profile& profile, Tid tid) {
    std::vector<const SelectorWait*> out;
    for (const SelectorWait& w : profile.selector_waits()) {
        if (w.tid == tid) out.push_back(&w);
    }
    stable_sort_unless_sorted(out.begin(), out.end(), [](const SelectorWait* a, const SelectorWait* b) { return a->enter < b->enter; });
    return out;
}

namespace {

std::vector<std::string> format_stack(const Profile& profile, StackId stack) {
    std::vector<std::string> out;
    for (FrameId f : profile.stack(stack)) out.push_back(profile.format_frame(f));
    return out;
}

Nanoseconds overlap_of(Nanoseconds b1, Nanoseconds e1, Nanoseconds b2, Nanoseconds e2) {
    const Nanoseconds b = std::max(b1, b2);
    const Nanoseconds e = std::min(e1, e2);
    return e > b ? e - b : Nanoseconds{0};
}

/// One sample inside a busy period.
struct Item {
    const SampleRecord* s;
    Nanoseconds start;  // clipped to the period
    Nanoseconds end;    // clipped to the period (= start for an on-CPU sample)
    std::int64_t frame;  // identity frame or -1
    std::uint64_t key;
    std::optional<TaskId> task;  // the asyncio task it ran in, when known
};

/// Splits one busy period [b0, b1] of `tid` into callbacks; appends those that qualify.
/// Splits a loop thread's busy periods into the callbacks they ran, keeping those of at least
/// `threshold` that overlap `window`.
struct CallbackSplitter {
    const Profile& profile;
    Identities ids;
    Nanoseconds threshold;
    const TimeWindow& window;
    const TaskAttribution* tasks;
    const CulpritRules& culprit;
    std::vector<SlowCallback> out;

    void split(Tid tid, const Timeline& tl, Nanoseconds b0, Nanoseconds b1);
};

void CallbackSplitter::split(Tid tid, const Timeline& tl, Nanoseconds b0, Nanoseconds b1) {
    std::vector<Item> items;
    const Nanoseconds from = b0 - tl.longest_off;
    auto it = std::lower_bound(tl.samples.begin(), tl.samples.end(), from,
                               [](const SampleRecord* s, Nanoseconds t) { return s->time < t; });
    for (; it != tl.samples.end() && (*it)->time <= b1; ++it) {
        const SampleRecord& s = **it;
        if (is_off_cpu(s)) {
            const Nanoseconds e = s.time + s.weight;
            const bool inside = s.weight.value == 0 ? (s.time >= b0 && s.time <= b1) : (e > b0 && s.time < b1);
            if (!inside) continue;
            items.push_back({&s, std::max(s.time, b0), std::min(e, b1), -1, 0});
        } else {
            if (s.time < b0) continue;
            items.push_back({&s, s.time, s.time, -1, 0});
        }
        Item& item = items.back();
        if (tasks) item.task = tasks->task_of(static_cast<std::size_t>(&s - profile.samples().data()));
        item.frame = ids.frame_of(s.stack);
        if (item.frame >= 0) item.key = ids.key_of(static_cast<FrameId>(item.frame));
    }

    // Boundaries between consecutive identified samples of different identities.
    std::vector<Nanoseconds> bounds{b0};
    std::vector<std::optional<std::uint64_t>> keys;
    std::optional<std::size_t> prev;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (items[i].frame < 0) continue;
        if (!prev) {
            keys.push_back(items[i].key);
        } else if (items[i].key != items[*prev].key ||
                   (items[i].task && items[*prev].task && !tasks->same_task(*items[i].task, *items[*prev].task))) {
            const Item& a = items[*prev];
            const Item& b = items[i];
            Nanoseconds cut = a.s->time + Nanoseconds{(b.s->time - a.s->time).value / 2};
            if (is_off_cpu(*a.s)) cut = std::max(cut, a.end);
            if (is_off_cpu(*b.s)) cut = std::min(cut, b.start);
            if (is_off_cpu(*a.s) && is_off_cpu(*b.s) && a.end > b.start) cut = a.end;
            // Nor inside an off-CPU interval of no identity between them.
            for (std::size_t k = *prev + 1; k < i; ++k) {
                const Item& m = items[k];
                if (is_off_cpu(*m.s) && m.start < cut && cut < m.end) cut = (cut - m.start < m.end - cut) ? m.start : m.end;
            }
            cut = std::clamp(cut, bounds.back(), b1);
            bounds.push_back(cut);
            keys.push_back(items[i].key);
        }
        prev = i;
    }
    if (keys.empty()) keys.push_back(std::nullopt);
    bounds.push_back(b1);

    for (std::size_t g = 0; g + 1 < bounds.size(); ++g) {
        const Nanoseconds gs = bounds[g];
        const Nanoseconds ge = bounds[g + 1];
        const bool last = g + 2 == bounds.size();
        if (ge - gs < threshold || !window.overlaps(gs, ge)) continue;
        SlowCallback cb;
        cb.thread = tid;
        cb.start = gs;
        cb.duration = ge - gs;
        std::map<StackId, std::int64_t> stack_weight;
        std::map<FrameId, std::int64_t> identity_weight;
        std::map<TaskId, std::int64_t> task_weight;
        for (const Item& item : items) {
            Nanoseconds w;
            if (is_off_cpu(*item.s)) {
                w = overlap_of(item.start, item.end, gs, ge);
                const bool zero_inside = item.start == item.end && item.start >= gs && (item.start < ge || last);
                if (w.value == 0 && !zero_inside) continue;
                cb.off_cpu += w;
                BlockingInterval bi;
                bi.start = std::max(item.start, gs);
                bi.duration = w;
                bi.reason = off_cpu_reason(item.s->syscall, item.s->off_flags);
                bi.gil = (item.s->off_flags & kOffGil) != 0;
                bi.gil_holder = item.s->gil_holder;
                if (bi.gil) cb.gil_wait += w;
                bi.stack = format_stack(profile, item.s->stack);
                cb.blocking.push_back(std::move(bi));
            } else {
                if (item.start < gs || (item.start >= ge && !(last && item.start == ge))) continue;
                w = item.s->weight;
            }
            stack_weight[item.s->stack] += w.value;
            if (item.task) task_weight[*item.task] += std::max<std::int64_t>(w.value, 1);
            if (item.frame >= 0 && keys[g] && item.key == *keys[g]) identity_weight[static_cast<FrameId>(item.frame)] += w.value;
        }
        cb.on_cpu = cb.duration - cb.off_cpu;
        if (cb.on_cpu.value < 0) cb.on_cpu = Nanoseconds{0};
        auto heaviest = [](const auto& weights) {
            auto best = weights.begin();
            for (auto i = weights.begin(); i != weights.end(); ++i) {
                if (i->second > best->second) best = i;  // ties: the smallest id (map order)
            }
            return best;
        };
        if (!identity_weight.empty()) {
            cb.callback = profile.format_frame(heaviest(identity_weight)->first);
        } else if (keys[g]) {
            // The identified samples all sit on the boundary; name it by any of them.
            for (const Item& item : items) {
                if (item.frame >= 0 && item.key == *keys[g]) {
                    cb.callback = profile.format_frame(static_cast<FrameId>(item.frame));
                    break;
                }
            }
        } else {
            cb.callback = stack_weight.empty() ? "<no samples>" : "<event loop>";
        }
        // The loop's own work (no callback ran) spent mostly asleep for the GIL (after a selector
        // wait, say): a stall of the GIL, not of a callback.
        if (cb.gil_wait.value * 2 > cb.duration.value &&
            (cb.callback == "<event loop>" || cb.callback.starts_with("BaseEventLoop._run_once ") ||
             (cb.callback.starts_with("_run_once (") && cb.callback.find("asyncio/base_events.py:") != std::string::npos))) {
            cb.callback = std::string(kGilStall);
        }
        if (!stack_weight.empty()) cb.stack = format_stack(profile, heaviest(stack_weight)->first);
        std::map<FrameId, std::int64_t> culprit_weight;
        for (const auto& [stack, w] : stack_weight) {
            if (auto f = culprit_frame(profile, stack, culprit)) culprit_weight[*f] += std::max<std::int64_t>(w, 1);
        }
        if (!culprit_weight.empty()) cb.culprit = profile.format_frame(heaviest(culprit_weight)->first);
        if (!task_weight.empty()) cb.task = std::string(tasks->name(heaviest(task_weight)->first));
        std::stable_sort(cb.blocking.begin(), cb.blocking.end(), [](const BlockingInterval& a, const BlockingInterval& b) {
            if (a.duration != b.duration) return a.duration > b.duration;
            return a.start < b.start;
        });
        out.push_back(std::move(cb));
    }
}

}  // namespace

Nanoseconds TimeWindow::overlap(Nanoseconds b, Nanoseconds e) const { return overlap_of(b, e, begin, end); }

bool TimeWindow::overlaps(Nanoseconds b, Nanoseconds e) const {
    if (e <= b) return contains(b);
    return b < end && e > begin;
}

TimeWindow analysis_window(const Profile& profile, const AnalysisFilter& filter) {
    TimeWindow w;
    w.begin = profile.info.start;
    w.end = profile.info.end > profile.info.start ? profile.info.end : kForever;
    if (filter.from_s) {
        const Nanoseconds rel = seconds_to_ns(*filter.from_s);
        if (rel == kForever) w.begin = kForever;
        else w.begin = std::max(w.begin, profile.info.start + rel);
    }
    if (filter.to_s) {
        const Nanoseconds rel = seconds_to_ns(*filter.to_s);
        if (rel != kForever) w.end = std::min(w.end, profile.info.start + rel);
    }
    if (w.end < w.begin) w.end = w.begin;
    return w;
}

bool thread_selected(const AnalysisFilter& filter, Tid tid) {
    return filter.threads.empty() || std::find(filter.threads.begin(), filter.threads.end(), tid) != filter.threads.end();
}

bool is_loop_frame(const Profile& profile, FrameId frame) {
    return classify_frame(profile, frame) & kLoopFrame;
}

std::vector<Tid> find_loop_threads(const Profile& profile, std::optional<Tid> override) {
    if (override) return {*override};
    std::unordered_set<Tid> waiting;
    for (const SelectorWait& w : profile.selector_waits()) waiting.insert(w.tid);
    FrameClasses classes(profile);
    std::vector<std::int8_t> stack_has_loop(profile.stack_count(), -1);
    std::unordered_set<Tid> found;
    for (const SampleRecord& s : profile.samples()) {
        if (!waiting.count(s.tid) || found.count(s.tid)) continue;
        std::int8_t& has = stack_has_loop[s.stack];
        if (has < 0) {
            has = 0;
            for (FrameId f : profile.stack(s.stack)) {
                if (classes.of(f) & kLoopFrame) {
                    has = 1;
                    break;
                }
            }
        }
        if (has) found.insert(s.tid);
    }
    std::vector<Tid> out(found.begin(), found.end());
    std::sort(out.begin(), out.end());
    return out;
}

LoopStats loop_stats(const Profile& profile, Tid thread, const TimeWindow& window) {
    LoopStats st;
    st.thread = thread;
    for (const SelectorWait* w : waits_of(profile, thread)) {
        if (window.contains(w->enter)) ++st.iterations;
        st.idle += window.overlap(w->enter, w->leave);
        if (w->previous_leave.value != 0 && w->previous_leave <= w->enter) {
            st.busy += window.overlap(w->previous_leave, w->enter);
        }
        if (w->folded_waits == 0 && w->folded_wait_time.value == 0 && w->folded_busy_time.value == 0) continue;
        // The folded waits and their busy periods filled the span that ended at previous_leave.
        const Nanoseconds span_end = w->previous_leave.value != 0 ? w->previous_leave : w->enter;
        const Nanoseconds span = w->folded_wait_time + w->folded_busy_time;
        const Nanoseconds span_begin = span_end - span;
        double fraction;
        if (span.value <= 0) fraction = window.contains(span_end) ? 1.0 : 0.0;
        else if (span_begin >= window.begin && span_end <= window.end) fraction = 1.0;
        else fraction = static_cast<double>(window.overlap(span_begin, span_end).value) / static_cast<double>(span.value);
        if (fraction >= 1.0) {
            st.iterations += w->folded_waits;
            st.idle += w->folded_wait_time;
            st.busy += w->folded_busy_time;
        } else if (fraction > 0.0) {
            st.iterations += static_cast<std::uint64_t>(std::llround(w->folded_waits * fraction));
            st.idle += Nanoseconds{std::llround(static_cast<double>(w->folded_wait_time.value) * fraction)};
            st.busy += Nanoseconds{std::llround(static_cast<double>(w->folded_busy_time.value) * fraction)};
        }
    }
    return st;
}

std::vector<SlowCallback> find_slow_callbacks(const Profile& profile, const std::vector<Tid>& loop_threads,
                                              Nanoseconds threshold, const TimeWindow& window, CallbackOrder order,
                                              const TaskAttribution* tasks, const CulpritRules& culprit) {
    CallbackSplitter splitter{profile, Identities(profile), threshold, window, tasks, culprit, {}};
    auto lines = timelines(profile, loop_threads);
    for (Tid tid : loop_threads) {
        const Timeline& tl = lines[tid];
        for (const SelectorWait* w : waits_of(profile, tid)) {
            if (w->previous_leave.value == 0 || w->enter < w->previous_leave) continue;
            if (w->enter - w->previous_leave < threshold || !window.overlaps(w->previous_leave, w->enter)) continue;
            splitter.split(tid, tl, w->previous_leave, w->enter);
        }
    }
    std::vector<SlowCallback> out = std::move(splitter.out);
    auto by_time = [](const SlowCallback& a, const SlowCallback& b) {
        return std::tie(a.start, a.thread) < std::tie(b.start, b.thread);
    };
    if (order == CallbackOrder::Time) {
        std::stable_sort(out.begin(), out.end(), by_time);
    } else {
        std::stable_sort(out.begin(), out.end(), [&](const SlowCallback& a, const SlowCallback& b) {
            if (a.duration != b.duration) return a.duration > b.duration;
            return by_time(a, b);
        });
    }
    return out;
}

Nanoseconds nearest_rank_percentile(const std::vector<Nanoseconds>& ascending, double p) {
    if (ascending.empty()) return Nanoseconds{0};
    const double n = static_cast<double>(ascending.size());
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * n - 1e-9));
    rank = std::clamp<std::size_t>(rank, 1, ascending.size());
    return ascending[rank - 1];
}

std::vector<GilHolder> longest_first(const std::map<Tid, Nanoseconds>& by_thread) {
    std::vector<GilHolder> out;
    for (const auto& [tid, t] : by_thread) out.push_back({tid, t});
    std::stable_sort(out.begin(), out.end(), [](const GilHolder& a, const GilHolder& b) { return a.time > b.time; });
    return out;
}

std::vector<BlockingCall> aggregate_blocking_calls(const Profile& profile, const std::vector<Tid>& loop_threads,
                                                   const TimeWindow& window, const CulpritRules& culprit) {
    const std::unordered_set<Tid> loops(loop_threads.begin(), loop_threads.end());
    std::map<std::tuple<Pid, StackId, std::string, bool>, std::vector<Nanoseconds>> by_stack;
    std::map<std::tuple<Pid, StackId, std::string, bool>, std::map<Tid, Nanoseconds>> holders;
    for (const SampleRecord& s : profile.samples()) {
        if (!is_off_cpu(s) || !loops.count(s.tid)) continue;
        if (!window.overlaps(s.time, sample_end(s))) continue;
        std::tuple<Pid, StackId, std::string, bool> key{profile.process_of(s.tid), s.stack,
                                                        off_cpu_reason(s.syscall, s.off_flags), (s.off_flags & kOffGil) != 0};
        if (s.gil_holder.value != 0) holders[key][s.gil_holder] += s.weight;
        by_stack[std::move(key)].push_back(s.weight);
    }
    // Distinct stack ids may format the same (frames that differ only in flags).
    using Key = std::tuple<Pid, std::vector<std::string>, std::string, bool>;
    std::map<Key, std::vector<Nanoseconds>> merged;
    std::map<Key, std::optional<std::string>> culprits;
    std::map<Key, std::map<Tid, Nanoseconds>> merged_holders;
    for (auto& [key, durations] : by_stack) {
        const auto& [pid, stack, reason, gil] = key;
        Key k{pid, format_stack(profile, stack), reason, gil};
        if (auto f = culprit_frame(profile, stack, culprit)) culprits[k] = profile.format_frame(*f);
        if (auto h = holders.find(key); h != holders.end()) {
            for (const auto& [tid, t] : h->second) merged_holders[k][tid] += t;
        }
        auto& into = merged[std::move(k)];
        into.insert(into.end(), durations.begin(), durations.end());
    }
    std::vector<BlockingCall> out;
    out.reserve(merged.size());
    for (auto& [key, durations] : merged) {
        std::sort(durations.begin(), durations.end());
        BlockingCall call;
        call.pid = std::get<0>(key);
        call.stack = std::get<1>(key);
        call.reason = std::get<2>(key);
        call.gil = std::get<3>(key);
        if (auto c = culprits.find(key); c != culprits.end()) call.culprit = c->second;
        if (auto h = merged_holders.find(key); h != merged_holders.end()) call.gil_holders = longest_first(h->second);
        call.count = durations.size();
        for (Nanoseconds d : durations) call.total += d;
        call.max = durations.back();
        call.p50 = nearest_rank_percentile(durations, 50);
        call.p99 = nearest_rank_percentile(durations, 99);
        out.push_back(std::move(call));
    }
    // `merged` is ordered by (process, stack, reason), so a stable sort leaves that as the last tie-break.
    std::stable_sort(out.begin(), out.end(), [](const BlockingCall& a, const BlockingCall& b) {
        if (a.total != b.total) return a.total > b.total;
        return a.count > b.count;
    });
    return out;
}

bool CulpritRules::own_code(std::string_view file) const {
    const std::string f(file);
    for (const std::string& g : include) {
        if (::fnmatch(g.c_str(), f.c_str(), 0) == 0) return true;
    }
    for (const std::string& g : exclude) {
        if (::fnmatch(g.c_str(), f.c_str(), 0) == 0) return false;
    }
    if (f.empty() || f.starts_with("<frozen ")) return false;
    if (f.find("/site-packages/") != std::string::npos || f.find("/dist-packages/") != std::string::npos) return false;
    // The standard library: a directory lib/pythonX.Y/ (or lib/pythonX.Yt/, free-threaded).
    for (std::size_t at = f.find("/lib/python"); at != std::string::npos; at = f.find("/lib/python", at + 1)) {
        std::size_t i = at + 11;
        const std::size_t digits = i;
        while (i < f.size() && (std::isdigit(static_cast<unsigned char>(f[i])) || f[i] == '.')) ++i;
        if (i < f.size() && f[i] == 't') ++i;
        if (i > digits && i < f.size() && f[i] == '/') return false;
    }
    return true;
}

std::optional<FrameId> culprit_frame(const Profile& profile, StackId stack, const CulpritRules& rules) {
    const std::span<const FrameId> frames = profile.stack(stack);
    for (std::size_t i = frames.size(); i-- > 0;) {
        const FrameRecord& f = profile.frame(frames[i]);
        if (f.flags & kFrameSpecial) continue;
        if (rules.own_code(profile.string(f.file))) return frames[i];
    }
    return std::nullopt;
}

LoopAnalysis analyze_loops(const Profile& profile, const LoopAnalysisOptions& options, const TaskAttribution* tasks) {
    std::optional<TaskAttribution> own;
    if (!tasks && !profile.task_snapshots().empty()) tasks = &own.emplace(profile);
    LoopAnalysis a;
    a.window = analysis_window(profile, options.filter);
    a.whole_recording = !options.filter.from_s && !options.filter.to_s;
    a.threshold = options.threshold;
    a.order = options.order;
    for (const SampleRecord& s : profile.samples()) {
        if (!thread_selected(options.filter, s.tid)) continue;
        if (is_off_cpu(s)) {
            if (a.window.overlaps(s.time, sample_end(s))) ++a.samples.off_cpu;
        } else if (a.window.contains(s.time)) {
            ++a.samples.on_cpu;
        }
    }
    a.samples.lost = profile.lost.total() + profile.lost.off_cpu;
    for (Tid t : find_loop_threads(profile, options.loop_thread)) {
        if (thread_selected(options.filter, t)) a.loop_threads.push_back(t);
    }
    a.total.thread = Tid{0};
    for (Tid t : a.loop_threads) {
        LoopStats st = loop_stats(profile, t, a.window);
        a.total.iterations += st.iterations;
        a.total.busy += st.busy;
        a.total.idle += st.idle;
        a.per_thread.push_back(st);
    }
    a.slow_callbacks = find_slow_callbacks(profile, a.loop_threads, a.threshold, a.window, a.order, tasks, options.culprit);
    if (a.slow_callbacks.empty() && !a.loop_threads.empty()) {
        // Nothing passed the threshold: the longest callback there was, so the user knows how far.
        auto every = find_slow_callbacks(profile, a.loop_threads, Nanoseconds{1}, a.window, CallbackOrder::Duration,
                                         tasks, options.culprit);
        if (!every.empty()) a.longest_callback = std::move(every.front());
    }
    a.blocking_calls = aggregate_blocking_calls(profile, a.loop_threads, a.window, options.culprit);
    return a;
}

}  // namespace loopspy
