#include "reports/timeline.hpp"

#include <algorithm>

#include "reports/syscalls.hpp"

namespace loopspy {

std::map<Tid, std::vector<TimelineSpan>> thread_timelines(const Profile& profile, FlameMode mode,
                                                          const std::vector<Tid>& loop_threads,
                                                          const AnalysisFilter& filter) {
    const TimeWindow window = analysis_window(profile, filter);
    std::map<Tid, std::vector<TimelineSpan>> out;
    auto add = [&](Tid tid, TimelineSpan span) {
        span.start = std::max(span.start, window.begin);
        span.end = std::min(span.end, window.end);
        if (span.end > span.start) out[tid].push_back(std::move(span));
    };
    for (const SampleRecord& s : profile.samples()) {
        if (!thread_selected(filter, s.tid)) continue;
        if (s.kind == SampleKind::OnCpu) {
            if (!window.contains(s.time)) continue;
            add(s.tid, {s.time - s.weight, s.time, TimelineSpan::Kind::OnCpu, s.stack, {}});
        } else if (mode != FlameMode::Cpu) {
            add(s.tid, {s.time, s.time + s.weight, TimelineSpan::Kind::OffCpu, s.stack,
                        off_cpu_leaf(s.syscall, s.off_flags)});
        }
    }
    if (mode == FlameMode::Wall) {
        for (const SelectorWait& w : profile.selector_waits()) {
            if (!thread_selected(filter, w.tid) ||
                !std::binary_search(loop_threads.begin(), loop_threads.end(), w.tid)) {
                continue;
            }
            add(w.tid, {w.enter, w.leave, TimelineSpan::Kind::Idle, 0, {}});
        }
    }
    const Nanoseconds period{profile.info.rate_hz > 0 ? 1'000'000'000 / profile.info.rate_hz : 0};
    for (auto& [tid, spans] : out) {
        std::stable_sort(spans.begin(), spans.end(),
                         [](const TimelineSpan& a, const TimelineSpan& b) { return a.start < b.start; });
        Nanoseconds last{INT64_MIN};
        std::vector<TimelineSpan> kept;
        kept.reserve(spans.size());
        for (TimelineSpan& s : spans) {
            // Timer samples do not come exactly a period apart: an on-CPU span that begins less
            // than a period after the one before continues it (the thread was running between).
            if (!kept.empty() && s.kind == TimelineSpan::Kind::OnCpu && s.start > last && s.start - last < period) {
                s.start = last;
            }
            s.start = std::max(s.start, last);
            if (s.end <= s.start) continue;
            last = s.end;
            kept.push_back(std::move(s));
        }
        spans = std::move(kept);
    }
    return out;
}

}  // namespace loopspy
