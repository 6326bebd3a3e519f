#include "reports/text_tables.hpp"
#include "reports/stacks.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "reports/collapsed.hpp"
#include "reports/text.hpp"
#include "reports/thread_frames.hpp"
#include "reports/syscalls.hpp"

namespace loopspy {

namespace {

// Decodes the code point at s[i] of valid UTF-8 and advances i.
char32_t next_code_point(std::string_view s, std::size_t& i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int len = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
    if (i + static_cast<std::size_t>(len) > s.size()) len = 1;
    char32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    i += static_cast<std::size_t>(len);
    return cp;
}

std::size_t code_point_width(char32_t cp) {
    if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x200B && cp <= 0x200F) || (cp >= 0xFE00 && cp <= 0xFE0F)) return 0;
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) || (cp >= 0x3041 && cp <= 0x33FF) ||
        (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
        (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
        (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
        (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD)) {
        return 2;
    }
    return 1;
}

}  // namespace

std::string fit(const std::string& text, std::size_t width) {
    if (display_width(text) <= width) return text + std::string(width - display_width(text), ' ');
    std::string out;
    std::size_t used = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t j = i;
        const std::size_t w = code_point_width(next_code_point(text, j));
        if (used + w + 1 > width) break;  // keep a column for the ellipsis
        out.append(text, i, j - i);
        used += w;
        i = j;
    }
    out += "\u2026";
    ++used;
    return out + std::string(width > used ? width - used : 0, ' ');
}

namespace {

std::string right(const std::string& text, std::size_t width) {
    const std::size_t w = display_width(text);
    return w >= width ? text : std::string(width - w, ' ') + text;
}

std::string format(const char* fmt, double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), fmt, v);
    return buf;
}

std::string ms(Nanoseconds ns) { return format("%.1f ms", ns.ms()); }
std::string seconds(Nanoseconds ns) { return format("%.3f s", ns.seconds()); }

std::string thread_label(const Profile& profile, Tid tid) {
    std::string name = profile.thread_name(tid);
    if (name.empty()) name = "?";
    std::string label = terminal_safe(name) + " (" + std::to_string(tid.value);
    // Several processes: say whose thread it is.
    if (profile.multi_process()) label += ", pid " + std::to_string(profile.process_of(tid).value);
    return label + ")";
}

constexpr std::size_t kTimeColumn = 10;
constexpr std::size_t kThreadColumn = 22;

}  // namespace

std::string terminal_safe(std::string_view text) {
    const std::string valid = sanitize_utf8(text);
    std::string out;
    out.reserve(valid.size());
    std::size_t i = 0;
    while (i < valid.size()) {
        const std::size_t begin = i;
        const char32_t cp = next_code_point(valid, i);
        const bool control = cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
        const bool bidi = (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200E || cp == 0x200F;
        if (control || bidi) out += '?';
        else out.append(valid, begin, i - begin);
    }
    return out;
}

std::size_t display_width(std::string_view utf8) {
    std::size_t width = 0;
    std::size_t i = 0;
    while (i < utf8.size()) width += code_point_width(next_code_point(utf8, i));
    return width;
}

std::string render_slow_callbacks_table(const Profile& profile, const LoopAnalysis& a,
                                        const SlowCallbackTableOptions& options) {
    std::string out;
    if (a.loop_threads.empty()) {
        out += "loopspy: no asyncio event loop found (no thread both waited in a selector and ran asyncio's loop); "
               "--loop-thread TID names one\n";
        return out;
    }
    const std::size_t n = a.slow_callbacks.size();
    std::string threshold = format("%.3f", a.threshold.ms());
    while (threshold.back() == '0') threshold.pop_back();
    if (threshold.back() == '.') threshold.pop_back();

    out += "loopspy: ";
    out += n == 0 ? std::string("no slow callbacks") : std::to_string(n) + (n == 1 ? " slow callback" : " slow callbacks");
    out += " \u2265 " + threshold + " ms on loop thread" + (a.loop_threads.size() == 1 ? " " : "s ");
    for (std::size_t i = 0; i < a.loop_threads.size(); ++i) {
        if (i) out += ", ";
        out += thread_label(profile, a.loop_threads[i]);
    }
    if (!a.whole_recording) {
        out += " between " + seconds(a.window.begin - profile.info.start) + " and " +
               seconds(a.window.end - profile.info.start);
    }
    if (n > 1) out += a.order == CallbackOrder::Duration ? ", longest first" : ", in time order";
    out += '\n';

    for (const LoopStats& st : a.per_thread) {
        const Nanoseconds span = st.busy + st.idle;
        out += "  loop " + thread_label(profile, st.thread) + ": " + std::to_string(st.iterations) + " iterations, busy " +
               seconds(st.busy);
        if (span.value > 0) out += format(" (%.1f%%)", 100.0 * static_cast<double>(st.busy.value) / static_cast<double>(span.value));
        out += ", idle " + seconds(st.idle) + '\n';
    }
    if (n == 0) {
        if (const auto& cb = a.longest_callback) {
            out += "  the longest callback took " + ms(cb->duration) + " (" + terminal_safe(cb->callback);
            if (cb->task) out += " [task " + terminal_safe(*cb->task) + "]";
            out += ", at " + seconds(cb->start - profile.info.start) + "): --threshold " +
                   std::to_string(static_cast<long long>(cb->duration.ms())) + " or less lists it\n";
        }
        return out;
    }

    // One slow callback's row: when, how long, on and off CPU, where; then its culprit and its
    // blocking calls. `indent` is the row's.
    auto row_of = [&](const SlowCallback& cb) {
        std::string label = std::to_string(cb.thread.value);
        const std::string name = profile.thread_name(cb.thread);
        if (!name.empty()) label += " " + terminal_safe(name);
        std::string row = right(seconds(cb.start - profile.info.start), kTimeColumn) + right(ms(cb.duration), kTimeColumn + 2) +
                          right(ms(cb.on_cpu), kTimeColumn + 2) + right(ms(cb.off_cpu), kTimeColumn + 2) + "  " +
                          fit(label, kThreadColumn) + "  " + terminal_safe(cb.callback);
        if (cb.task) row += " [task " + terminal_safe(*cb.task) + "]";
        return row;
    };
    auto details_of = [&](const SlowCallback& cb) {
        std::string d;
        // The program's own frame that held the time, when the callback is the framework's.
        if (cb.culprit && *cb.culprit != cb.callback) d += "      culprit: " + terminal_safe(*cb.culprit) + '\n';
        // Intervals with the same reason at the same innermost frame are one line: a callback
        // preempted a thousand times reads as one line, not a thousand.
        struct Line {
            std::string reason;
            std::string frame;
            Nanoseconds total;
            std::size_t count = 0;
            std::size_t first = 0;  // index of its longest interval, for a stable order
            std::map<Tid, Nanoseconds> gil_holders;
        };
        std::vector<Line> lines;
        std::map<std::pair<std::string, std::string>, std::size_t> line_of;
        for (std::size_t k = 0; k < cb.blocking.size(); ++k) {
            const BlockingInterval& b = cb.blocking[k];
            std::string frame = b.stack.empty() ? std::string("<no Python frame>") : b.stack.back();
            const std::string reason = b.gil ? std::string(kGilWaitWords) : b.reason;
            auto [it, inserted] = line_of.try_emplace({reason, frame}, lines.size());
            if (inserted) lines.push_back({reason, std::move(frame), Nanoseconds{0}, 0, k});
            Line& line = lines[it->second];
            line.total += b.duration;
            ++line.count;
            if (b.gil_holder.value != 0) line.gil_holders[b.gil_holder] += b.duration;
        }
        std::stable_sort(lines.begin(), lines.end(), [](const Line& x, const Line& y) {
            if (x.total != y.total) return x.total > y.total;
            return x.first < y.first;
        });
        const std::size_t nb = std::min(lines.size(), options.blocking_per_callback);
        for (std::size_t k = 0; k < nb; ++k) {
            const Line& line = lines[k];
            std::string why = terminal_safe(line.reason);
            if (why == "page fault/other") why = "off-CPU (page fault/other)";
            else if (why != "preempted" && why != kGilWaitWords) why = "in " + why;
            if (line.count > 1) why += " (" + std::to_string(line.count) + " times)";
            d += "      \u21b3 " + ms(line.total) + " " + why + " at " + terminal_safe(line.frame);
            // Who held the GIL meanwhile: the two it was waited on longest.
            std::vector<GilHolder> holders = longest_first(line.gil_holders);
            for (std::size_t h = 0; h < holders.size() && h < 2; ++h) {
                d += (h == 0 ? ", held by " : ", ") + terminal_safe(thread_root_frame(profile, holders[h].thread));
            }
            if (holders.size() > 2) d += " and " + std::to_string(holders.size() - 2) + " more";
            d += '\n';
        }
        if (lines.size() > nb) {
            Nanoseconds rest;
            std::size_t count = 0;
            for (std::size_t k = nb; k < lines.size(); ++k) {
                rest += lines[k].total;
                count += lines[k].count;
            }
            d += "      \u21b3 " + ms(rest) + " in " + std::to_string(count) +
                 (count == 1 ? " other off-CPU interval\n" : " other off-CPU intervals\n");
        }
        return d;
    };

    // Repeated stalls of one callback (the same callback and culprit in one process) are one
    // group: how many, their total, p50 and max, and the worst one in full. In the order of
    // their first member, so longest first (or in time order) still holds for the groups.
    std::vector<std::vector<const SlowCallback*>> groups;
    if (options.group) {
        std::map<std::tuple<std::int32_t, std::string, std::string>, std::size_t> group_of;
        for (const SlowCallback& cb : a.slow_callbacks) {
            auto key = std::make_tuple(profile.process_of(cb.thread).value, cb.callback, cb.culprit.value_or(""));
            auto [it, fresh] = group_of.try_emplace(key, groups.size());
            if (fresh) groups.emplace_back();
            groups[it->second].push_back(&cb);
        }
    } else {
        for (const SlowCallback& cb : a.slow_callbacks) groups.push_back({&cb});
    }
    if (groups.size() < n) {
        out += "  grouped by callback: " + std::to_string(groups.size()) + (groups.size() == 1 ? " callback" : " callbacks") +
               ", a line each with its longest stall (--no-group lists all " + std::to_string(n) + ")\n";
    }
    out += "  " + right("start", kTimeColumn) + right("duration", kTimeColumn + 2) + right("on-CPU", kTimeColumn + 2) +
           right("blocked", kTimeColumn + 2) + "  " + fit("thread", kThreadColumn) + "  callback\n";
    const std::size_t shown = std::min(groups.size(), options.max_callbacks);
    std::size_t stalls_shown = 0;
    for (std::size_t r = 0; r < shown; ++r) {
        const auto& members = groups[r];
        const SlowCallback* worst = members.front();
        for (const SlowCallback* m : members) {
            if (m->duration > worst->duration) worst = m;
        }
        stalls_shown += members.size();
        out += "  " + row_of(*worst) + '\n';
        if (members.size() > 1) {
            std::vector<Nanoseconds> d;
            Nanoseconds total;
            for (const SlowCallback* m : members) {
                d.push_back(m->duration);
                total += m->duration;
            }
            std::sort(d.begin(), d.end());
            out += "      " + std::to_string(members.size()) + " times, " + ms(total) + " in all: p50 " +
                   ms(d[(d.size() - 1) / 2]) + ", max " + ms(d.back()) + " (the row: the longest)\n";
        }
        out += details_of(*worst);
    }
    if (shown < groups.size()) {
        out += "  \u2026 and " + std::to_string(n - stalls_shown) + " more\n";
    }
    return out;
}

namespace {

void appendf(std::string& out, const char* fmt, auto... args) {
    char small[512];
    int n = std::snprintf(small, sizeof small, fmt, args...);
    if (n < 0) return;
    if (static_cast<std::size_t>(n) < sizeof small) {
        out.append(small, static_cast<std::size_t>(n));
        return;
    }
    std::string big(static_cast<std::size_t>(n) + 1, '\0');
    std::snprintf(big.data(), big.size(), fmt, args...);
    out.append(big.data(), static_cast<std::size_t>(n));
}

class TreePrinter {
public:
    explicit TreePrinter(const std::vector<DumpTask>& tasks) : tasks_(tasks) {
        for (std::size_t i = 0; i < tasks.size(); ++i) index_[tasks[i].addr] = i;
        for (std::size_t i = 0; i < tasks.size(); ++i) {
            for (std::uint64_t a : tasks[i].awaited_by) {
                if (auto it = index_.find(a); it != index_.end()) children_[it->second].push_back(i);
            }
        }
    }

    void print(std::string& out) {
        for (std::size_t i = 0; i < tasks_.size(); ++i) {
            bool has_parent = false;
            for (std::uint64_t a : tasks_[i].awaited_by) has_parent = has_parent || index_.count(a);
            if (!has_parent) task(out, i, "", true, {});
        }
        // Tasks in an await cycle have no root; show them once too.
        for (std::size_t i = 0; i < tasks_.size(); ++i) {
            if (!printed_.count(i)) task(out, i, "", true, {});
        }
    }

private:
    void line(std::string& out, const std::string& prefix, bool last, const std::string& text) {
        out += prefix;
        out += last ? "└── " : "├── ";
        out += sanitize_utf8(text);
        out += '\n';
    }

    void task(std::string& out, std::size_t i, std::string prefix, bool last, std::set<std::size_t> path) {
        const DumpTask& t = tasks_[i];
        printed_.insert(i);
        std::string label = "(T) " + t.name + " [" + t.state;
        if (t.thread) label += " on thread " + std::to_string(t.thread->value);
        label += "]";
        if (path.count(i)) {
            line(out, prefix, last, label + " (await cycle)");
            return;
        }
        line(out, prefix, last, label);
        path.insert(i);
        prefix += last ? "    " : "│   ";
        // The await chain, outermost first, each frame nested in the one before.
        const auto& kids = children_[i];
        const auto outermost_first = std::vector<DumpFrame>(t.stack.rbegin(), t.stack.rend());
        for (const std::string& f : folded(outermost_first, [](const DumpFrame& x) { return x.text(); })) {
            line(out, prefix, true, f);
            prefix += "    ";
        }
        for (std::size_t k = 0; k < kids.size(); ++k) task(out, kids[k], prefix, k + 1 == kids.size(), path);
    }

    const std::vector<DumpTask>& tasks_;
    std::unordered_map<std::uint64_t, std::size_t> index_;
    std::map<std::size_t, std::vector<std::size_t>> children_;
    std::set<std::size_t> printed_;
};

}  // namespace

std::string render_tasks_table(const std::vector<TaskSummary>& tasks, std::size_t limit) {
    std::string out;
    char line[512];
    std::snprintf(line, sizeof line, "Tasks: %zu seen%s\n", tasks.size(),
                  tasks.size() > limit ? (", the " + std::to_string(limit) + " longest shown").c_str() : "");
    out += line;
    if (tasks.empty()) return out;
    std::snprintf(line, sizeof line, "%12s %12s  %s\n", "running ms", "waiting ms", "task / waits on");
    out += line;
    for (std::size_t i = 0; i < tasks.size() && i < limit; ++i) {
        const TaskSummary& t = tasks[i];
        appendf(out, "%12.1f %12.1f  %s\n", t.running.ms(), t.suspended.ms(), sanitize_utf8(t.name).c_str());
        for (std::size_t w = 0; w < t.waits.size() && w < 3; ++w) {
            const TaskWait& wait = t.waits[w];
            std::string where;
            for (const std::string& f : wait.where) {
                if (!where.empty()) where += " -> ";
                where += f;
            }
            appendf(out, "%12s %12.1f    %s\n", "", wait.time.ms(), sanitize_utf8(where).c_str());
        }
    }
    return out;
}

std::string render_dump_text(const ProcessDump& d) {
    std::string out;
    appendf(out, "Process %d: %s\nPython %s (%s)\n", d.pid.value, sanitize_utf8(d.command).c_str(),
            d.python.text().c_str(), sanitize_utf8(d.python_binary).c_str());
    for (const DumpThread& t : d.threads) {
        const DumpTask* running = d.task_running_on(t.tid);
        appendf(out, "\nThread %d \"%s\"%s%s\n", t.tid.value, sanitize_utf8(t.name).c_str(),
                running ? " running task " : (t.frames.empty() ? " (idle: no Python frames)" : ""),
                running ? sanitize_utf8(running->name).c_str() : "");
        for (const std::string& f : folded(t.frames, [](const DumpFrame& x) { return x.text(); })) {
            appendf(out, "    %s\n", sanitize_utf8(f).c_str());
        }
        if (t.truncated) out += "    <truncated>\n";
    }
    appendf(out, "\nTasks: %zu\n", d.tasks.size());
    TreePrinter(d.tasks).print(out);
    return out;
}

std::string render_recording_summary(const Profile& p, const LoopAnalysis& a, bool complete, std::string_view ending) {
    const ProfileInfo& info = p.info;
    std::string out;
    appendf(out, "target:        pid %d  %s\n", info.pid.value, info.target_command.c_str());
    appendf(out, "python:        %s (%s)\n", info.python.text().c_str(), info.python_binary.c_str());
    const std::string state = complete ? "complete (" + std::string(ending) + ")" : "cut short";
    appendf(out, "recorded:      %.2f s at %d Hz on %s, %s\n", (info.end - info.start).seconds(), info.rate_hz,
            info.kernel.c_str(), state.c_str());
    appendf(out, "samples:       %llu on-CPU, %llu off-CPU intervals, %llu lost\n",
            static_cast<unsigned long long>(a.samples.on_cpu), static_cast<unsigned long long>(a.samples.off_cpu),
            static_cast<unsigned long long>(a.samples.lost));
    appendf(out, "threads:       %zu", p.threads().size());
    out += "  loop threads:";
    if (a.loop_threads.empty()) out += " none found";
    for (Tid t : a.loop_threads) out += " " + std::to_string(t.value);
    out += "\n\n";
    SlowCallbackTableOptions to;
    to.max_callbacks = 5;
    out += render_slow_callbacks_table(p, a, to);
    return out;
}

}  // namespace loopspy
