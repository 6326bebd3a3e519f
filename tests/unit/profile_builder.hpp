// Synthetic recordings for the unit tests, written as a user's story: a stdlib event loop thread
// whose callbacks run, block and wait in the selector, at times given in milliseconds.
#pragma once

#include <initializer_list>
#include <string_view>
#include <vector>

#include "recording/profile.hpp"

namespace loopspy::testing {

inline constexpr std::int64_t kStartNs = 5'000'000'000;  // info.start
inline constexpr Tid kLoop{100};

/// Milliseconds since the recording's start as an absolute time (fractions allowed).
inline Nanoseconds at(double ms) { return Nanoseconds{kStartNs + static_cast<std::int64_t>(ms * 1e6 + (ms >= 0 ? 0.5 : -0.5))}; }
inline Nanoseconds dur(double ms) { return Nanoseconds{static_cast<std::int64_t>(ms * 1e6 + 0.5)}; }

/// Builds synthetic recordings: stacks from frame names, samples and selector waits in ms.
struct ProfileBuilder {
    Profile p;

    ProfileBuilder() {
        p.info.pid = Pid{4242};
        p.info.python = PythonVersion{0x030C01F0};
        p.info.rate_hz = 1000;
        p.info.start = Nanoseconds{kStartNs};
        p.info.end = at(10'000);
        p.set_thread_name(kLoop, "MainThread");
    }

    FrameId frame(std::string_view name, std::string_view file = "app.py", int line = 1, std::uint32_t flags = 0) {
        return p.intern_frame(name, file, line, flags);
    }
    FrameId coro(std::string_view name, int line = 1) { return frame(name, "app.py", line, kFrameCoroutine); }

    /// The stdlib loop down to Handle._run.
    std::vector<FrameId> stdlib_loop() {
        return {frame("<module>", "app.py", 90), frame("run", "/usr/lib/python3.12/asyncio/runners.py", 194),
                frame("Runner.run", "/usr/lib/python3.12/asyncio/runners.py", 118),
                frame("BaseEventLoop.run_until_complete", "/usr/lib/python3.12/asyncio/base_events.py", 671),
                frame("BaseEventLoop.run_forever", "/usr/lib/python3.12/asyncio/base_events.py", 638),
                frame("BaseEventLoop._run_once", "/usr/lib/python3.12/asyncio/base_events.py", 1987)};
    }
    std::vector<FrameId> handle_run() {
        auto f = stdlib_loop();
        f.push_back(frame("Handle._run", "/usr/lib/python3.12/asyncio/events.py", 84));
        return f;
    }
    /// A stack in a callback of the stdlib loop: Handle._run, then `inner`.
    StackId in_callback(std::initializer_list<FrameId> inner) {
        auto f = handle_run();
        f.insert(f.end(), inner.begin(), inner.end());
        return p.intern_stack(f);
    }
    /// The loop's own code between callbacks.
    StackId in_loop() {
        auto f = stdlib_loop();
        f.push_back(frame("EpollSelector.select", "/usr/lib/python3.12/selectors.py", 468));
        return p.intern_stack(f);
    }

    void on(double ms, StackId stack, Tid tid = kLoop) {
        SampleRecord s{tid, at(ms), dur(1), stack};
        s.kind = SampleKind::OnCpu;
        p.add_sample(s);
    }
    /// On-CPU samples every ms in [from, to].
    void on_range(double from, double to, StackId stack, Tid tid = kLoop) {
        for (double t = from; t <= to + 1e-9; t += 1) on(t, stack, tid);
    }
    void off(double ms, double length_ms, StackId stack, std::int32_t syscall = 230, std::uint32_t flags = 0,
             Tid tid = kLoop) {
        SampleRecord s{tid, at(ms), dur(length_ms), stack};
        s.kind = SampleKind::OffCpu;
        s.syscall = syscall;
        s.off_flags = flags;
        p.add_sample(s);
    }
    void wait(double previous_leave, double enter, double leave, Tid tid = kLoop, std::uint32_t folded = 0,
              double folded_wait = 0, double folded_busy = 0) {
        SelectorWait w{tid};
        w.syscall = 232;
        w.previous_leave = previous_leave < 0 ? Nanoseconds{0} : at(previous_leave);
        w.enter = at(enter);
        w.leave = at(leave);
        w.folded_waits = folded;
        w.folded_wait_time = dur(folded_wait);
        w.folded_busy_time = dur(folded_busy);
        p.add_selector_wait(w);
    }
};

}  // namespace loopspy::testing
