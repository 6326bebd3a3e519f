// `loopspy top`: the recording engine's live view in a terminal, redrawn about once a second.
// It reads the Profile the recorder fills, which in top keeps the last kRetained seconds of
// events (record lets them go at each checkpoint): the header (the target, samples/s, per loop
// thread its iterations/s, busy and idle over the last second and since start, the longest
// callback of the last second), the stalls (drawn at once when a loop comes back from one) (slow callbacks newest first, kept after they
// leave the window), and one table below them: hot functions (py-spy top's columns) or the
// blocking calls. On a stdout that is not a terminal it prints a plain report each second.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <tuple>
#include <string>
#include <vector>

#include "core/types.hpp"
#include "recording/profile.hpp"
#include "reports/loop_analysis.hpp"
#include "session/recorder.hpp"

namespace loopspy {

class TopView {
public:
    /// How much history the profile keeps for the view, in seconds.
    static constexpr double kRetained = 10.0;

    TopView(Profile& profile, double threshold_ms, std::atomic<bool>& stop);
    ~TopView();  // gives the terminal back as it was

    /// Called with each recorder status (every 250 ms): reads keys, and redraws once a second.
    void on_status(const RecorderStatus& status, bool final);
    /// After the checkpoint wrote the events to the recording: lets go of those older than the
    /// retained window.
    void trim();
    /// What the last screen showed, as plain text (for the non-terminal report and the end).
    const std::string& last_text() const { return last_text_; }

private:
    struct Function {
        double own_recent = 0, total_recent = 0;  // samples in the last interval
        std::uint64_t own = 0, total = 0;         // samples since start (or since `r`)
    };
    struct Stall {
        SlowCallback cb;
        Pid pid;
    };
    void read_keys();
    void update(const RecorderStatus& status);
    std::string render(const RecorderStatus& status, int width, int height) const;
    void draw(const std::string& screen);

    Profile& profile_;
    double threshold_ms_;
    std::atomic<bool>& stop_;
    bool terminal_ = false;   // stdout is a terminal: full screen
    bool keys_ = false;       // stdin is a terminal in raw mode
    bool color_ = true;       // NO_COLOR unset and TERM not dumb
    bool paused_ = false;
    bool help_ = false;
    enum class Table { Hot, Blocking, Tasks };
    Table table_ = Table::Hot;    // `t`: the table under the stalls
    int sort_ = 1;                // 1 own %, 2 total %, 3 own time, 4 total time (py-spy's keys)
    Nanoseconds last_draw_{0};    // when the screen was last drawn (0: draw at the next status)
    Nanoseconds last_update_{0};
    std::size_t counted_upto_ = 0;  // absolute index of the next on-CPU sample to count
    std::uint64_t samples_at_last_ = 0;
    double samples_per_s_ = 0;
    std::map<std::string, Function> functions_;
    std::vector<Stall> stalls_;  // newest first, at most kMaxStalls
    LoopAnalysis recent_;        // the last second
    LoopAnalysis retained_;      // the retained window
    /// The live tasks, from the task snapshots (top keeps them all): each entry, and since when
    /// it has been as it is (a suspended task: since when it waits where it waits).
    struct LiveTask {
        TaskEntry entry;
        Nanoseconds since;
    };
    std::map<std::pair<std::int32_t, TaskId>, LiveTask> tasks_;  // (pid, task)
    /// The loop threads' off-CPU intervals since start, by (process, stack, reason): those the
    /// window let go of are added here as it drops them, so nothing counts twice.
    using BlockingKey = std::tuple<std::int32_t, StackId, std::string>;
    std::map<BlockingKey, std::vector<Nanoseconds>> blocking_dropped_;
    void add_blocking(std::map<BlockingKey, std::vector<Nanoseconds>>& into, std::size_t from, std::size_t to) const;
    std::size_t snapshots_seen_ = 0;
    std::vector<std::size_t> kept_from_;  // absolute sample/wait indexes at each trim, oldest first
    std::vector<std::size_t> kept_waits_from_;
    /// Busy and idle since start: what the window let go of, per thread, up to accounted_until_
    /// (the last dropped selector wait's return); the rest is counted from the window.
    std::map<Tid, LoopStats> dropped_stats_;
    Nanoseconds accounted_until_{0};
    std::size_t waits_checked_ = 0;  // absolute index of the next selector wait to look at for a stall
    LoopStats since_start(Tid tid, Nanoseconds now) const;
    std::string last_text_;
    struct TermState;
    TermState* saved_ = nullptr;
};

}  // namespace loopspy
