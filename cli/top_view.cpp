#include "cli/top_view.hpp"

#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "core/clock.hpp"
#include "reports/syscalls.hpp"
#include "reports/text_tables.hpp"

namespace loopspy {

namespace {

constexpr std::size_t kMaxStalls = 50;
constexpr Nanoseconds kRedraw{1'000'000'000};

std::string printf_string(const char* fmt, auto... args) {
    char buf[512];
    std::snprintf(buf, sizeof buf, fmt, args...);
    return buf;
}

std::string ms_text(Nanoseconds d) { return printf_string("%.1f ms", d.ms()); }

std::string_view base_name(std::string_view path) {
    const std::size_t slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

/// "name (file.py:12)" from "name (/long/path/file.py:12)": a screen is 80 columns.
std::string compact(const std::string& frame) {
    const std::size_t open = frame.rfind(" (");
    if (open == std::string::npos || frame.back() != ')') return frame;
    const std::string_view where = std::string_view(frame).substr(open + 2, frame.size() - open - 3);
    return frame.substr(0, open) + " (" + std::string(base_name(where)) + ")";
}

/// "name (file.py)": a function, whatever line it was at.
std::string function_key(const Profile& profile, FrameId id) {
    const FrameRecord& f = profile.frame(id);
    if (f.flags & kFrameSpecial) return std::string(profile.string(f.name));
    return std::string(profile.string(f.name)) + " (" + std::string(base_name(profile.string(f.file))) + ")";
}

std::string thread_text(const Profile& profile, Tid tid) {
    std::string name = profile.thread_name(tid);
    return terminal_safe(name.empty() ? "?" : name) + " (" + std::to_string(tid.value) + ")";
}

}  // namespace

struct TopView::TermState {
    termios saved{};
};

TopView::TopView(Profile& profile, double threshold_ms, std::atomic<bool>& stop)
    : profile_(profile), threshold_ms_(threshold_ms), stop_(stop) {
    terminal_ = ::isatty(STDOUT_FILENO);
    const char* term = std::getenv("TERM");
    color_ = terminal_ && !std::getenv("NO_COLOR") && !(term && std::strcmp(term, "dumb") == 0);
    if (terminal_ && ::isatty(STDIN_FILENO)) {
        saved_ = new TermState;
        if (::tcgetattr(STDIN_FILENO, &saved_->saved) == 0) {
            termios raw = saved_->saved;
            raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
            raw.c_cc[VMIN] = 0;
            raw.c_cc[VTIME] = 0;
            keys_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
        }
    }
    // The alternate screen, cursor hidden: the shell's screen comes back as it was at the end.
    if (terminal_) std::fputs("\033[?1049h\033[?25l\033[H\033[2J", stdout);
    std::fflush(stdout);
}

TopView::~TopView() {
    if (terminal_) std::fputs("\033[?25h\033[?1049l", stdout);
    std::fflush(stdout);
    if (saved_ && keys_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_->saved);
    delete saved_;
}

void TopView::read_keys() {
    if (!keys_) return;
    char buf[32];
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    for (ssize_t i = 0; i < n; ++i) {
        switch (buf[i]) {
            case 'q': case 'Q': stop_.store(true); break;
            case 'p': case 'P': paused_ = !paused_; break;
            case '?': case 'h': help_ = !help_; break;
            case 't': case 'T':
                table_ = table_ == Table::Hot ? Table::Blocking : table_ == Table::Blocking ? Table::Tasks : Table::Hot;
                break;
            case '+': threshold_ms_ = threshold_ms_ < 10 ? threshold_ms_ + 1 : threshold_ms_ + 10; break;
            case '-': threshold_ms_ = threshold_ms_ <= 10 ? std::max(1.0, threshold_ms_ - 1) : threshold_ms_ - 10; break;
            case '1': case '2': case '3': case '4': sort_ = buf[i] - '0'; break;
            case 'r': case 'R':
                functions_.clear();
                stalls_.clear();
                break;
            default: break;
        }
        // A key redraws at once.
        last_draw_ = Nanoseconds{0};
    }
}

void TopView::add_blocking(std::map<BlockingKey, std::vector<Nanoseconds>>& into, std::size_t from,
                           std::size_t to) const {
    const auto& samples = profile_.samples();
    const std::vector<Tid>& loops = retained_.loop_threads;
    for (std::size_t i = from; i < to && i < samples.size(); ++i) {
        const SampleRecord& s = samples[i];
        if (s.kind != SampleKind::OffCpu || !std::binary_search(loops.begin(), loops.end(), s.tid)) continue;
        const std::string reason = (s.off_flags & kOffGil) ? std::string(kGilWaitWords) : off_cpu_reason(s.syscall, s.off_flags);
        into[{profile_.process_of(s.tid).value, s.stack, reason}].push_back(s.weight);
    }
}

void TopView::trim() {
    kept_from_.push_back(profile_.samples_dropped() + profile_.samples().size());
    kept_waits_from_.push_back(profile_.waits_dropped() + profile_.selector_waits().size());
    if (kept_from_.size() > static_cast<std::size_t>(kRetained)) {
        add_blocking(blocking_dropped_, 0, kept_from_.front() - profile_.samples_dropped());
        // The loops' busy and idle time in the waits about to go, added up first.
        const auto& waits = profile_.selector_waits();
        const std::size_t going = std::min(waits.size(), kept_waits_from_.front() - profile_.waits_dropped());
        Nanoseconds until = accounted_until_;
        std::set<Tid> threads;
        for (std::size_t i = 0; i < going; ++i) {
            until = std::max(until, waits[i].leave);
            threads.insert(waits[i].tid);
        }
        for (Tid tid : threads) {
            const LoopStats part = loop_stats(profile_, tid, TimeWindow{accounted_until_, until});
            LoopStats& into = dropped_stats_.try_emplace(tid, LoopStats{tid, 0, {}, {}}).first->second;
            into.iterations += part.iterations;
            into.busy += part.busy;
            into.idle += part.idle;
        }
        accounted_until_ = until;
        profile_.drop_events_before(kept_from_.front(), kept_waits_from_.front());
        kept_from_.erase(kept_from_.begin());
        kept_waits_from_.erase(kept_waits_from_.begin());
    }
}

LoopStats TopView::since_start(Tid tid, Nanoseconds now) const {
    LoopStats st = loop_stats(profile_, tid, TimeWindow{accounted_until_, now + Nanoseconds{1'000'000'000}});
    if (auto it = dropped_stats_.find(tid); it != dropped_stats_.end()) {
        st.iterations += it->second.iterations;
        st.busy += it->second.busy;
        st.idle += it->second.idle;
    }
    return st;
}

void TopView::update(const RecorderStatus& status) {
    const double elapsed = status.elapsed.seconds();
    const double dt = (status.elapsed - last_update_).seconds();
    if (dt > 0) samples_per_s_ = static_cast<double>(status.samples - samples_at_last_) / dt;
    samples_at_last_ = status.samples;
    last_update_ = status.elapsed;

    LoopAnalysisOptions lo;
    lo.threshold = Nanoseconds{std::llround(threshold_ms_ * 1e6)};
    lo.order = CallbackOrder::Time;
    lo.filter.from_s = std::max(0.0, elapsed - kRetained);
    lo.filter.to_s = elapsed + 1;
    retained_ = analyze_loops(profile_, lo);
    lo.filter.from_s = std::max(0.0, elapsed - 1.0);
    recent_ = analyze_loops(profile_, lo);

    // Stalls stay listed after they leave the window; a callback seen again replaces itself.
    for (const SlowCallback& cb : retained_.slow_callbacks) {
        auto same = std::find_if(stalls_.begin(), stalls_.end(),
                                 [&](const Stall& s) { return s.cb.thread == cb.thread && s.cb.start == cb.start; });
        if (same != stalls_.end()) same->cb = cb;
        else stalls_.push_back({cb, profile_.process_of(cb.thread)});
    }
    std::erase_if(stalls_, [&](const Stall& s) { return s.cb.duration < lo.threshold; });
    std::stable_sort(stalls_.begin(), stalls_.end(), [](const Stall& a, const Stall& b) { return a.cb.start > b.cb.start; });
    if (stalls_.size() > kMaxStalls) stalls_.resize(kMaxStalls);

    // Hot functions: the samples since the last update (own: the innermost frame; total: every
    // function on the stack, once).
    for (auto& [name, f] : functions_) f.own_recent = f.total_recent = 0;
    const auto& samples = profile_.samples();
    const std::size_t base = profile_.samples_dropped();
    std::size_t from = counted_upto_ > base ? counted_upto_ - base : 0;
    std::set<std::string> seen;
    for (std::size_t i = from; i < samples.size(); ++i) {
        const SampleRecord& s = samples[i];
        if (s.kind != SampleKind::OnCpu) continue;
        auto frames = profile_.stack(s.stack);
        if (frames.empty()) continue;
        seen.clear();
        for (std::size_t k = 0; k < frames.size(); ++k) {
            std::string key = function_key(profile_, frames[k]);
            Function& f = functions_[key];
            if (k + 1 == frames.size()) {
                ++f.own;
                ++f.own_recent;
            }
            if (seen.insert(std::move(key)).second) {
                ++f.total;
                ++f.total_recent;
            }
        }
    }
    counted_upto_ = base + samples.size();

    // The tasks: each snapshot since the last update, applied in order.
    const auto& snaps = profile_.task_snapshots();
    for (std::size_t i = snapshots_seen_; i < snaps.size(); ++i) {
        const TaskSnapshot& snap = snaps[i];
        for (TaskId gone : snap.removed) tasks_.erase({snap.pid.value, gone});
        for (const TaskEntry& e : snap.changed) {
            auto [it, fresh] = tasks_.try_emplace({snap.pid.value, e.task}, LiveTask{e, snap.time});
            if (!fresh && !(it->second.entry.state == e.state && it->second.entry.stack == e.stack)) it->second.since = snap.time;
            it->second.entry = e;
        }
    }
    snapshots_seen_ = snaps.size();
}

std::string TopView::render(const RecorderStatus& status, int width, int height) const {
    const std::size_t w = static_cast<std::size_t>(std::max(width, 20));
    std::vector<std::string> lines;
    auto add = [&](const std::string& line) { lines.push_back(fit(line, w)); };
    const ProfileInfo& info = profile_.info;
    std::string command = info.target_command;
    add(printf_string("loopspy top: pid %d, Python %s%s", info.pid.value, info.python.text().c_str(),
                      paused_ ? "  [paused]" : "") +
        (command.empty() ? "" : "  " + terminal_safe(command)));
    add(printf_string("%.0f samples/s, %llu lost, %zu Python threads, %.0f s, threshold %.0f ms   ? help  q quit",
                      samples_per_s_, static_cast<unsigned long long>(status.lost), status.threads,
                      status.elapsed.seconds(), threshold_ms_));
    if (help_) {
        add("keys: q quit (the recording is finished)  p pause  t hot functions / blocking calls");
        add("      + - threshold  1 %Own 2 %Total 3 OwnTime 4 TotalTime (sort)  r reset  ? this help");
    }
    if (retained_.loop_threads.empty()) add("no asyncio event loop seen yet");
    for (std::size_t i = 0; i < retained_.per_thread.size() && i < 4; ++i) {
        const LoopStats& all = retained_.per_thread[i];
        const Tid tid = all.thread;
        LoopStats last{tid, 0, {}, {}};
        for (const LoopStats& s : recent_.per_thread) {
            if (s.thread == tid) last = s;
        }
        auto busy = [](const LoopStats& s) {
            const double span = static_cast<double>((s.busy + s.idle).value);
            return span > 0 ? 100.0 * static_cast<double>(s.busy.value) / span : 0.0;
        };
        std::string longest;
        const auto every = find_slow_callbacks(profile_, {tid}, Nanoseconds{1}, recent_.window);
        if (!every.empty()) {
            longest = ", longest " + ms_text(every.front().duration) + " " + terminal_safe(compact(every.front().callback));
        }
        const double busy_now = busy(last), busy_all = busy(since_start(tid, status.elapsed + info.start));
        add("loop " + thread_text(profile_, tid) +
            printf_string(": %llu it/s, busy/idle %.0f/%.0f%% (1 s) %.0f/%.0f%% (since start)",
                          static_cast<unsigned long long>(last.iterations), busy_now, 100 - busy_now, busy_all,
                          100 - busy_all) +
            longest);
    }
    add("");
    const std::string bold = color_ ? "\033[1m" : "", plain = color_ ? "\033[0m" : "";
    add(printf_string("STALLS: callbacks of at least %.0f ms, newest first", threshold_ms_));
    const std::size_t rest = static_cast<std::size_t>(std::max(height, 10)) - std::min<std::size_t>(lines.size(), height);
    const std::size_t stall_rows = std::min(stalls_.size(), std::max<std::size_t>(3, rest / 2 - 2));
    if (stalls_.empty()) add("  none yet");
    else add("       ago   duration     on-CPU    blocked  callback, culprit, longest block");
    const Nanoseconds now = status.elapsed + info.start;
    for (std::size_t i = 0; i < stall_rows; ++i) {
        const SlowCallback& cb = stalls_[i].cb;
        std::string what = terminal_safe(compact(cb.callback));
        if (cb.task) what += " [task " + terminal_safe(*cb.task) + "]";
        if (cb.culprit && *cb.culprit != cb.callback) what += " <- " + terminal_safe(compact(*cb.culprit));
        if (!cb.blocking.empty()) {
            const BlockingInterval& b = cb.blocking.front();
            what += " | " + (b.gil ? std::string(kGilWaitWords) : terminal_safe(b.reason)) + " " + ms_text(b.duration);
        }
        add(printf_string("  %6.1fs %10s %10s %10s  ", (now - cb.start).seconds(), ms_text(cb.duration).c_str(),
                          ms_text(cb.on_cpu).c_str(), ms_text(cb.off_cpu).c_str()) +
            what);
    }
    add("");
    if (table_ == Table::Tasks) {
        std::vector<const LiveTask*> suspended;
        for (const auto& [key, t] : tasks_) {
            if (t.entry.state == TaskState::Suspended) suspended.push_back(&t);
        }
        std::stable_sort(suspended.begin(), suspended.end(),
                         [](const LiveTask* a, const LiveTask* b) { return a->since < b->since; });
        add(printf_string("TASKS: %zu live, %zu suspended; the longest suspended first (t: hot functions)",
                          tasks_.size(), suspended.size()));
        add("    waiting  task  awaiting");
        const CulpritRules own_code;
        for (const LiveTask* t : suspended) {
            if (lines.size() + 1 >= static_cast<std::size_t>(height)) break;
            const auto& records = profile_.tasks();
            const std::string name = t->entry.task < records.size() ? std::string(profile_.string(records[t->entry.task].name)) : "?";
            // Where it waits: the program's own innermost coroutine in the chain (not asyncio's
            // sleep), then what the chain's bottom awaits.
            auto chain = profile_.stack(t->entry.stack);
            std::string where;
            if (chain.size() >= 2) {
                std::size_t at = chain.size() - 2;
                for (std::size_t k = chain.size() - 1; k-- > 0;) {
                    const FrameRecord& f = profile_.frame(chain[k]);
                    if (!(f.flags & kFrameSpecial) && own_code.own_code(profile_.string(f.file))) {
                        at = k;
                        break;
                    }
                }
                where = compact(profile_.format_frame(chain[at])) + " ";
            }
            if (!chain.empty()) where += profile_.format_frame(chain.back());
            add(printf_string("  %8.1fs  ", (now - t->since).seconds()) + terminal_safe(name) + "  " + terminal_safe(where));
        }
    } else if (table_ == Table::Blocking) {
        add("BLOCKING CALLS of the loops since start, by stack and syscall (t: tasks)");
        add("   count      total        max        p99   syscall  at");
        // Those the window let go of, and those it holds.
        std::map<BlockingKey, std::vector<Nanoseconds>> all = blocking_dropped_;
        add_blocking(all, 0, profile_.samples().size());
        struct Row {
            std::size_t count;
            Nanoseconds total, max, p99;
            std::string reason, at;
        };
        std::vector<Row> rows;
        const CulpritRules own;
        for (auto& [key, durations] : all) {
            std::sort(durations.begin(), durations.end());
            Row r{durations.size(), {}, durations.back(), nearest_rank_percentile(durations, 99), std::get<2>(key), "?"};
            for (Nanoseconds d : durations) r.total += d;
            if (auto f = culprit_frame(profile_, std::get<1>(key), own)) r.at = profile_.format_frame(*f);
            else if (auto frames = profile_.stack(std::get<1>(key)); !frames.empty()) r.at = profile_.format_frame(frames.back());
            rows.push_back(std::move(r));
        }
        std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.total > b.total; });
        for (const Row& r : rows) {
            if (lines.size() + 1 >= static_cast<std::size_t>(height)) break;
            add(printf_string("  %6zu %10s %10s %10s   ", r.count, ms_text(r.total).c_str(), ms_text(r.max).c_str(),
                              ms_text(r.p99).c_str()) +
                terminal_safe(r.reason) + "  " + terminal_safe(compact(r.at)));
        }
    } else {
        add("HOT FUNCTIONS: % of the last second, times since start (t: blocking calls)");
        add("   %Own  %Total  OwnTime TotalTime  function");
        double recent_total = 0;
        for (const auto& [name, f] : functions_) recent_total += f.own_recent;
        std::vector<const std::pair<const std::string, Function>*> rows;
        for (const auto& entry : functions_) {
            if (entry.second.total > 0) rows.push_back(&entry);
        }
        auto value = [&](const Function& f) {
            switch (sort_) {
                case 1: return f.own_recent;
                case 3: return static_cast<double>(f.own);
                case 4: return static_cast<double>(f.total);
                default: return f.total_recent;
            }
        };
        // Ties (a last second without samples: the target has ended, or idles) by time since start.
        std::stable_sort(rows.begin(), rows.end(), [&](auto* a, auto* b) {
            const double va = value(a->second), vb = value(b->second);
            if (va != vb) return va > vb;
            return a->second.total > b->second.total;
        });
        const double period_s = info.rate_hz > 0 ? 1.0 / info.rate_hz : 0.001;
        for (auto* row : rows) {
            if (lines.size() + 1 >= static_cast<std::size_t>(height)) break;
            const Function& f = row->second;
            const double denom = recent_total > 0 ? recent_total : 1;
            add(printf_string("  %5.1f%% %6.1f%% %7.2fs %8.2fs  ", 100 * f.own_recent / denom, 100 * f.total_recent / denom,
                              static_cast<double>(f.own) * period_s, static_cast<double>(f.total) * period_s) +
                terminal_safe(row->first));
        }
    }
    std::string out;
    for (std::size_t i = 0; i < lines.size() && i < static_cast<std::size_t>(height); ++i) {
        // The first line and the section titles in bold where the terminal has it.
        const std::string& line = lines[i];
        const bool title = i == 0 || line.starts_with("STALLS") || line.starts_with("HOT FUNCTIONS") ||
                           line.starts_with("BLOCKING CALLS") || line.starts_with("TASKS");
        std::string text = line;
        if (!terminal_) text.erase(text.find_last_not_of(' ') + 1);  // a file wants no padding
        out += (title ? bold : "") + text + (title ? plain : "") + "\n";
    }
    return out;
}

void TopView::draw(const std::string& screen) {
    if (!terminal_) {
        std::fputs(screen.c_str(), stdout);
        std::fputs("\n", stdout);
    } else {
        // Home, each line cleared to its end, then everything below: no flicker, no leftovers
        // after a resize.
        std::string out = "\033[H";
        std::size_t start = 0;
        while (start < screen.size()) {
            std::size_t nl = screen.find('\n', start);
            if (nl == std::string::npos) nl = screen.size();
            out.append(screen, start, nl - start);
            out += "\033[K";
            if (nl < screen.size()) out += "\r\n";
            start = nl + 1;
        }
        out += "\033[J";
        std::fputs(out.c_str(), stdout);
    }
    std::fflush(stdout);
}

void TopView::on_status(const RecorderStatus& status, bool final) {
    read_keys();
    // A loop that just came back from a stall (a busy period of at least the threshold, ended by
    // its next selector wait) is shown at once, not at the next second.
    const auto& waits = profile_.selector_waits();
    const Nanoseconds threshold{std::llround(threshold_ms_ * 1e6)};
    for (std::size_t i = waits_checked_ > profile_.waits_dropped() ? waits_checked_ - profile_.waits_dropped() : 0;
         i < waits.size(); ++i) {
        const SelectorWait& w = waits[i];
        if (w.previous_leave.value != 0 && w.enter - w.previous_leave >= threshold) last_draw_ = Nanoseconds{0};
    }
    waits_checked_ = profile_.waits_dropped() + waits.size();
    if (!final && last_draw_.value != 0 && status.elapsed - last_draw_ < kRedraw) return;
    if (paused_ && !final && last_draw_.value != 0) return;
    update(status);
    last_draw_ = status.elapsed;
    int width = 80, height = 24;
    if (terminal_) {
        winsize ws{};
        if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
            width = ws.ws_col;
            height = ws.ws_row;
        }
    } else {
        width = 160;
        height = 60;
    }
    std::string screen = render(status, width, height);
    last_text_ = screen;
    if (!final || !terminal_) draw(screen);
}

}  // namespace loopspy
