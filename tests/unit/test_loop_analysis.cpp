#include <doctest/doctest.h>

#include <sys/syscall.h>

#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "recording/profile.hpp"
#include "reports/flame_modes.hpp"
#include "reports/loop_analysis.hpp"
#include "reports/text_tables.hpp"
#include "reports/syscalls.hpp"
#include "tests/unit/profile_builder.hpp"

using namespace loopspy;

namespace {

using testing::at;
using testing::dur;
using testing::kLoop;
using testing::kStartNs;
using Rec = testing::ProfileBuilder;

LoopAnalysis analyze(const Profile& p, double threshold_ms = 100, AnalysisFilter filter = {},
                     CallbackOrder order = CallbackOrder::Duration) {
    LoopAnalysisOptions o;
    o.threshold = dur(threshold_ms);
    o.filter = std::move(filter);
    o.order = order;
    return analyze_loops(p, o);
}

const SlowCallback* find_callback(const LoopAnalysis& a, std::string_view prefix) {
    for (const auto& cb : a.slow_callbacks) {
        if (cb.callback.rfind(prefix, 0) == 0) return &cb;
    }
    return nullptr;
}

}  // namespace

TEST_CASE("loop analysis: two callbacks in one iteration, split at the midpoint between their samples") {
    Rec r;
    StackId a11 = r.in_callback({r.coro("handler_a", 11)});
    StackId a12 = r.in_callback({r.coro("handler_a", 12), r.frame("work", "app.py", 3)});
    StackId b = r.in_callback({r.coro("handler_b", 20)});
    r.wait(-1, 50, 100);
    r.wait(100, 400, 410);
    r.on(100.5, r.in_loop());  // the loop's own work: a pseudo-callback of its own, up to 100.75
    r.on_range(101, 180, a11);
    r.on_range(181, 250, a12);  // same callback, another line
    r.on_range(252, 399, b);

    LoopAnalysis a = analyze(r.p);
    REQUIRE(a.loop_threads == std::vector<Tid>{kLoop});
    REQUIRE(a.slow_callbacks.size() == 2);
    const SlowCallback& first = a.slow_callbacks[0];
    CHECK(first.callback == "handler_a (app.py:11)");  // the heavier line names it
    CHECK(first.start == at(100.75));
    CHECK(first.duration == dur(150.25));  // up to the midpoint of 250 and 252
    CHECK(first.on_cpu == dur(150.25));
    CHECK(first.off_cpu == Nanoseconds{0});
    CHECK(first.thread == kLoop);
    CHECK_FALSE(first.task.has_value());
    REQUIRE(!first.stack.empty());
    CHECK(first.stack.front() == "<module> (app.py:90)");
    CHECK(first.stack.back() == "handler_a (app.py:11)");  // 80 samples on line 11 vs 70 on line 12
    CHECK(first.blocking.empty());
    const SlowCallback& second = a.slow_callbacks[1];
    CHECK(second.callback == "handler_b (app.py:20)");
    CHECK(second.start == at(251));
    CHECK(second.duration == dur(149));

    // In time order instead.
    LoopAnalysis by_time = analyze(r.p, 100, {}, CallbackOrder::Time);
    REQUIRE(by_time.slow_callbacks.size() == 2);
    CHECK(by_time.slow_callbacks[0].callback == "handler_a (app.py:11)");
    // A threshold between the two keeps only the longer.
    LoopAnalysis strict = analyze(r.p, 150);
    REQUIRE(strict.slow_callbacks.size() == 1);
    CHECK(strict.slow_callbacks[0].callback == "handler_a (app.py:11)");
}

TEST_CASE("loop analysis: pure-Python task frames are skipped to reach the coroutine") {
    Rec r;
    StackId s = r.in_callback({r.frame("Task.__step", "/usr/lib/python3.12/asyncio/tasks.py", 293),
                               r.frame("Task.__step_run_and_handle_result", "/usr/lib/python3.12/asyncio/tasks.py", 303),
                               r.coro("slow", 7), r.frame("helper", "app.py", 40)});
    r.wait(-1, 0, 10);
    r.wait(10, 200, 210);
    r.on_range(11, 199, s);
    LoopAnalysis a = analyze(r.p);
    REQUIRE(a.slow_callbacks.size() == 1);
    CHECK(a.slow_callbacks[0].callback == "slow (app.py:7)");
    CHECK(a.slow_callbacks[0].duration == dur(190));
}

TEST_CASE("loop analysis: an off-CPU interval keeps the boundary out of it") {
    Rec r;
    StackId a_cpu = r.in_callback({r.coro("blocking_handler", 30)});
    StackId a_sleep = r.in_callback({r.coro("blocking_handler", 31)});
    StackId b = r.in_callback({r.coro("next_handler", 50)});
    r.wait(-1, 50, 100);
    r.wait(100, 400, 401);
    r.on_range(101, 150, a_cpu);
    r.off(150.5, 149.5, a_sleep, 230);  // [150.5, 300): the midpoint with 301 would fall inside
    r.on_range(301, 399, b);

    LoopAnalysis a = analyze(r.p);
    REQUIRE(a.slow_callbacks.size() == 2);
    const SlowCallback* sleeper = find_callback(a, "blocking_handler");
    REQUIRE(sleeper);
    CHECK(sleeper->start == at(100));
    CHECK(sleeper->duration == dur(200));  // ends when the sleep ends
    CHECK(sleeper->off_cpu == dur(149.5));
    CHECK(sleeper->on_cpu == dur(50.5));
    REQUIRE(sleeper->blocking.size() == 1);
    CHECK(sleeper->blocking[0].reason == "clock_nanosleep");
    CHECK(sleeper->blocking[0].duration == dur(149.5));
    CHECK(sleeper->blocking[0].start == at(150.5));
    CHECK(sleeper->blocking[0].stack.back() == "blocking_handler (app.py:31)");
    CHECK(sleeper->stack.back() == "blocking_handler (app.py:31)");  // the sleep outweighs the CPU part
    const SlowCallback* next = find_callback(a, "next_handler");
    REQUIRE(next);
    CHECK(next->start == at(300));
    CHECK(next->duration == dur(100));  // exactly the threshold: reported
    CHECK(next->off_cpu == Nanoseconds{0});

    SUBCASE("the later callback starting off-CPU: the boundary is before its interval") {
        Rec q;
        StackId x = q.in_callback({q.coro("x")});
        StackId y = q.in_callback({q.coro("y")});
        q.wait(-1, 0, 10);
        q.wait(10, 400, 401);
        q.on_range(11, 200, x);
        q.off(200.1, 150, y, 0);  // read() from 200.1 to 350.1
        q.on_range(351, 399, y);
        LoopAnalysis qa = analyze(q.p);
        const SlowCallback* ycb = find_callback(qa, "y");
        REQUIRE(ycb);
        CHECK(ycb->start == at(200.05));
        CHECK(ycb->off_cpu == dur(150));
        CHECK(ycb->blocking.at(0).reason == "read");
    }
    SUBCASE("an off-CPU interval of no identity between them: the boundary moves to its nearer edge") {
        Rec q;
        StackId x = q.in_callback({q.coro("x")});
        StackId y = q.in_callback({q.coro("y")});
        StackId unknown = q.p.intern_stack(std::vector<FrameId>{q.frame("<truncated>", "", 0, kFrameSpecial),
                                                                q.frame("helper", "lib.py", 2)});
        q.wait(-1, 0, 100);
        q.wait(100, 400, 401);
        q.on_range(101, 200, x);
        q.off(200.2, 59.8, unknown, kNoSyscall, kOffPreempted);  // [200.2, 260) holds the midpoint 250
        q.on_range(300, 399, y);
        LoopAnalysis qa = analyze(q.p, 0);
        const SlowCallback* xcb = find_callback(qa, "x");
        const SlowCallback* ycb = find_callback(qa, "y");
        REQUIRE(xcb);
        REQUIRE(ycb);
        CHECK(xcb->duration == dur(160));  // 100 .. 260
        CHECK(xcb->off_cpu == dur(59.8));
        CHECK(xcb->blocking.at(0).reason == "preempted");
        CHECK(ycb->start == at(260));
        CHECK(ycb->off_cpu == Nanoseconds{0});
    }
    SUBCASE("the loop's own time (waiting for the GIL after the selector returns) is not the callback's") {
        Rec q;
        StackId h = q.in_callback({q.coro("blocking_handler", 31)});
        q.wait(-1, 0, 100);
        q.wait(100, 400, 401);
        q.off(100.01, 12.99, q.in_loop(), 202);  // futex: [100.01, 113)
        q.on(113.5, q.in_loop());
        q.on_range(114, 399, h);
        LoopAnalysis qa = analyze(q.p, 0);
        REQUIRE(qa.slow_callbacks.size() == 2);
        const SlowCallback& handler = qa.slow_callbacks[0];
        CHECK(handler.callback == "blocking_handler (app.py:31)");
        CHECK(handler.start == at(113.75));
        CHECK(handler.off_cpu == Nanoseconds{0});
        const SlowCallback& loop = qa.slow_callbacks[1];
        CHECK(loop.callback == "BaseEventLoop._run_once (/usr/lib/python3.12/asyncio/base_events.py:1987)");
        CHECK(loop.start == at(100));
        CHECK(loop.duration == dur(13.75));
        CHECK(loop.blocking.at(0).reason == "futex");
        CHECK(loop.stack.back() == "EpollSelector.select (/usr/lib/python3.12/selectors.py:468)");
        // Under the threshold it is not listed.
        CHECK(analyze(q.p, 100).slow_callbacks.size() == 1);
    }
}

TEST_CASE("loop analysis: iterations, busy and idle add up folded waits") {
    Rec r;
    StackId s = r.in_callback({r.coro("h")});
    r.on(1, s);  // something with a loop frame
    // Timeline (ms): first wait [0, 10] (no previous leave seen: the busy time before it is unknown);
    // busy 10..20; wait 20..30; then 4 folded waits (2 ms waiting, 1.5 ms busy in all) up to
    // 33.5; busy 33.5..40; wait 40..100.
    r.wait(-1, 0, 10);
    r.wait(10, 20, 30);
    r.wait(33.5, 40, 100, kLoop, 4, 2, 1.5);

    LoopStats st = loop_stats(r.p, kLoop, analysis_window(r.p, {}));
    CHECK(st.iterations == 3 + 4);
    CHECK(st.idle == dur(10 + 10 + 60 + 2));
    CHECK(st.busy == dur(10 + 6.5 + 1.5));

    LoopAnalysis a = analyze(r.p);
    CHECK(a.total.iterations == 7);
    CHECK(a.total.idle == dur(82));
    CHECK(a.total.busy == dur(18));
    REQUIRE(a.per_thread.size() == 1);
    CHECK(a.per_thread[0].thread == kLoop);

    SUBCASE("a window clips the waits and spreads the folded ones over their span") {
        // [25 ms, 32 ms): half of wait 2 (5 ms), and of the folded span 30..33.5 the part up to
        // 32 (2/3.5 of it).
        AnalysisFilter f;
        f.from_s = 0.025;
        f.to_s = 0.032;
        LoopStats w = loop_stats(r.p, kLoop, analysis_window(r.p, f));
        CHECK(w.iterations == 2);  // no reported wait begins inside; round(4 * 2/3.5) folded
        CHECK(w.idle.value == dur(5).value + std::llround(dur(2).value * (2.0 / 3.5)));
        CHECK(w.busy.value == std::llround(dur(1.5).value * (2.0 / 3.5)));
    }
    SUBCASE("a second loop thread adds to the totals") {
        Tid other{200};
        r.on(1, s, other);
        r.wait(-1, 0, 5, other);
        r.wait(5, 15, 20, other, 1, 0.5, 0.5);
        LoopAnalysis two = analyze(r.p);
        REQUIRE(two.loop_threads == std::vector<Tid>{kLoop, other});
        CHECK(two.total.iterations == 7 + 3);
        CHECK(two.total.idle == dur(82 + 10.5));
        CHECK(two.total.busy == dur(18 + 10.5));
    }
}

TEST_CASE("loop analysis: the threshold includes equality") {
    Rec r;
    StackId s = r.in_callback({r.coro("h")});
    r.wait(-1, 0, 10);
    r.wait(10, 110, 120);           // busy exactly 100 ms
    r.wait(120, 219.999999, 230);   // 99.999999 ms
    r.on_range(11, 109, s);
    r.on_range(121, 219, s);
    LoopAnalysis a = analyze(r.p, 100);
    REQUIRE(a.slow_callbacks.size() == 1);
    CHECK(a.slow_callbacks[0].duration == dur(100));
    CHECK(a.slow_callbacks[0].start == at(10));
}

TEST_CASE("loop analysis: only threads that wait in a selector and run a loop are loop threads") {
    Rec r;
    const Tid selector_only{300}, loop_frames_only{301};
    r.p.set_thread_name(selector_only, "poller");
    // A thread that polls sockets by hand: selector waits, long busy periods, no loop frames.
    StackId poll_stack = r.p.intern_stack(std::vector<FrameId>{r.frame("poll_forever", "worker.py", 5)});
    r.wait(-1, 0, 10, selector_only);
    r.wait(10, 500, 510, selector_only);
    r.on_range(11, 499, poll_stack, selector_only);
    r.off(200, 100, poll_stack, 0, 0, selector_only);
    // A thread with loop frames that never waited in a selector.
    r.on_range(0, 300, r.in_callback({r.coro("h")}), loop_frames_only);
    // The real loop.
    r.wait(-1, 0, 10);
    r.wait(10, 20, 30);
    r.on(15, r.in_callback({r.coro("tiny")}));

    CHECK(find_loop_threads(r.p) == std::vector<Tid>{kLoop});
    LoopAnalysis a = analyze(r.p, 1);
    CHECK(a.loop_threads == std::vector<Tid>{kLoop});
    for (const auto& cb : a.slow_callbacks) CHECK(cb.thread == kLoop);
    CHECK(a.blocking_calls.empty());  // the poller's off-CPU interval is not a loop's blocking call

    // --loop-thread names the thread, whatever it looks like.
    CHECK(find_loop_threads(r.p, selector_only) == std::vector<Tid>{selector_only});
    LoopAnalysisOptions o;
    o.loop_thread = selector_only;
    LoopAnalysis forced = analyze_loops(r.p, o);
    CHECK(forced.loop_threads == std::vector<Tid>{selector_only});
    REQUIRE(forced.slow_callbacks.size() == 1);
    CHECK(forced.slow_callbacks[0].callback == "<event loop>");  // no frame says which callback
    CHECK(forced.slow_callbacks[0].off_cpu == dur(100));
    REQUIRE(forced.blocking_calls.size() == 1);
    CHECK(forced.blocking_calls[0].reason == "read");

    // No loop at all.
    Rec none;
    none.on(1, none.in_callback({none.coro("h")}));
    CHECK(find_loop_threads(none.p).empty());
    CHECK(render_slow_callbacks_table(none.p, analyze(none.p)).find("no asyncio event loop") != std::string::npos);
}

TEST_CASE("loop analysis: native loops (uvloop) name the coroutine, or the callback after the runner") {
    Rec r;
    const FrameId module = r.frame("<module>", "app.py", 100);
    const FrameId asyncio_run = r.frame("run", "/usr/lib/python3.12/asyncio/runners.py", 194);
    const FrameId runner = r.frame("Runner.run", "/usr/lib/python3.12/asyncio/runners.py", 118);
    auto stack = [&](std::initializer_list<FrameId> inner) {
        std::vector<FrameId> f{module, asyncio_run, runner};
        f.insert(f.end(), inner.begin(), inner.end());
        return r.p.intern_stack(f);
    };
    StackId task_step = stack({r.coro("cpu_handler", 36), r.frame("burn_cpu", "app.py", 24)});
    StackId plain_callback = stack({r.frame("on_timer", "app.py", 60), r.frame("burn_cpu", "app.py", 24)});
    StackId native_only = stack({});  // uvloop's own (native) work: the runner frame stands for it
    r.wait(-1, 0, 10);
    r.wait(10, 500, 510);
    r.on(11, native_only);
    r.on_range(12, 250, task_step);
    r.on_range(252, 499, plain_callback);

    CHECK(find_loop_threads(r.p) == std::vector<Tid>{kLoop});
    LoopAnalysis a = analyze(r.p);
    REQUIRE(a.slow_callbacks.size() == 2);
    CHECK(a.slow_callbacks[0].callback == "on_timer (app.py:60)");
    CHECK(a.slow_callbacks[0].duration == dur(249));  // 251 .. 500
    CHECK(a.slow_callbacks[1].callback == "cpu_handler (app.py:36)");
    CHECK(a.slow_callbacks[1].start == at(11.5));
    CHECK(a.slow_callbacks[1].duration == dur(239.5));

    SUBCASE("the outermost coroutine wins over the frame right after the runner") {
        Rec q;
        const FrameId q_runner = q.frame("Runner.run", "/usr/lib/python3.12/asyncio/runners.py", 118);
        StackId wrapped = q.p.intern_stack(std::vector<FrameId>{
            q_runner, q.frame("call_wrapper", "lib.py", 3), q.coro("outer_coro", 10), q.coro("inner_coro", 20)});
        // A truncated stack that lost its loop frames still names its coroutine.
        StackId truncated = q.p.intern_stack(std::vector<FrameId>{
            q.frame("<truncated>", "", 0, kFrameSpecial), q.coro("deep_coro", 5), q.frame("f", "app.py", 6)});
        q.wait(-1, 0, 10);
        q.wait(10, 300, 310);
        q.on_range(11, 150, wrapped);
        q.on_range(152, 299, truncated);
        LoopAnalysis qa = analyze(q.p);
        REQUIRE(qa.slow_callbacks.size() == 2);
        CHECK(qa.slow_callbacks[0].callback == "deep_coro (app.py:5)");
        CHECK(qa.slow_callbacks[1].callback == "outer_coro (app.py:10)");
    }
    SUBCASE("uvloop's own Python frames count as loop frames") {
        Rec u;
        const FrameId uv_run = u.frame("run", "/venv/lib/python3.12/site-packages/uvloop/__init__.py", 96);
        CHECK(is_loop_frame(u.p, uv_run));
        CHECK_FALSE(is_loop_frame(u.p, u.frame("run", "app.py", 3)));
        CHECK(is_loop_frame(u.p, u.frame("run", "/usr/lib/python3.11/asyncio/runners.py", 44)));
        u.wait(-1, 0, 10);
        u.on(5, u.p.intern_stack(std::vector<FrameId>{u.frame("<module>", "app.py", 1), uv_run, u.frame("tick", "app.py", 9)}));
        CHECK(find_loop_threads(u.p) == std::vector<Tid>{kLoop});
    }
}

TEST_CASE("loop analysis: a time window and a thread filter") {
    Rec r;
    StackId early = r.in_callback({r.coro("early")});
    StackId late = r.in_callback({r.coro("late")});
    r.wait(-1, 0, 10);
    r.wait(10, 200, 1000);
    r.wait(1000, 1300, 1310);
    r.on_range(11, 199, early);
    r.on_range(1001, 1200, late);
    r.off(1200.5, 99, late, 35);  // nanosleep
    r.off(100, 50, early, 0);

    AnalysisFilter f;
    f.from_s = 0.5;
    LoopAnalysis a = analyze(r.p, 100, f);
    CHECK_FALSE(a.whole_recording);
    CHECK(a.window.begin == at(500));
    CHECK(a.window.end == r.p.info.end);
    REQUIRE(a.slow_callbacks.size() == 1);
    CHECK(a.slow_callbacks[0].callback == "late (app.py:1)");
    REQUIRE(a.blocking_calls.size() == 1);
    CHECK(a.blocking_calls[0].reason == "nanosleep");
    CHECK(a.samples.on_cpu == 200);
    CHECK(a.samples.off_cpu == 1);
    CHECK(a.total.idle == dur(500 + 10));  // the window begins halfway through the second wait
    CHECK(a.total.busy == dur(300));
    CHECK(a.total.iterations == 1);

    // A callback that began before the window but reaches into it is listed, whole.
    f.from_s = 0.15;
    f.to_s = 0.16;
    LoopAnalysis cut = analyze(r.p, 100, f);
    REQUIRE(cut.slow_callbacks.size() == 1);
    CHECK(cut.slow_callbacks[0].callback == "early (app.py:1)");
    CHECK(cut.slow_callbacks[0].duration == dur(190));
    CHECK(cut.total.busy == dur(10));

    // Another thread only: no loop.
    AnalysisFilter other;
    other.threads = {Tid{999}};
    LoopAnalysis none = analyze(r.p, 100, other);
    CHECK(none.loop_threads.empty());
    CHECK(none.slow_callbacks.empty());
    CHECK(none.samples.on_cpu == 0);
}

TEST_CASE("loop analysis: blocking calls are grouped by stack and syscall, with nearest-rank percentiles") {
    std::vector<Nanoseconds> v;
    for (int i = 1; i <= 100; ++i) v.push_back(Nanoseconds{i});
    CHECK(nearest_rank_percentile(v, 50) == Nanoseconds{50});
    CHECK(nearest_rank_percentile(v, 99) == Nanoseconds{99});
    CHECK(nearest_rank_percentile(v, 100) == Nanoseconds{100});
    CHECK(nearest_rank_percentile({Nanoseconds{7}}, 50) == Nanoseconds{7});
    CHECK(nearest_rank_percentile({Nanoseconds{1}, Nanoseconds{2}, Nanoseconds{3}}, 50) == Nanoseconds{2});
    CHECK(nearest_rank_percentile({Nanoseconds{1}, Nanoseconds{2}, Nanoseconds{3}}, 99) == Nanoseconds{3});
    CHECK(nearest_rank_percentile({Nanoseconds{1}, Nanoseconds{2}, Nanoseconds{3}, Nanoseconds{4}}, 50) == Nanoseconds{2});
    CHECK(nearest_rank_percentile({}, 50) == Nanoseconds{0});

    Rec r;
    StackId sleeper = r.in_callback({r.coro("legacy_handler", 12)});
    StackId reader = r.in_callback({r.coro("report_handler", 20)});
    r.wait(-1, 0, 10);
    for (int i = 0; i < 10; ++i) r.off(20 + i * 20, 1 + i, sleeper, 230);  // 1..10 ms
    r.off(300, 30, reader, 0);
    r.off(400, 2, reader, 0);
    r.off(500, 40, sleeper, kNoSyscall, kOffPreempted);
    LoopAnalysis a = analyze(r.p);
    REQUIRE(a.blocking_calls.size() == 3);
    const BlockingCall& top = a.blocking_calls[0];
    CHECK(top.reason == "clock_nanosleep");
    CHECK(top.stack.back() == "legacy_handler (app.py:12)");
    CHECK(top.count == 10);
    CHECK(top.total == dur(55));
    CHECK(top.max == dur(10));
    CHECK(top.p50 == dur(5));
    CHECK(top.p99 == dur(10));
    CHECK(a.blocking_calls[1].reason == "preempted");
    CHECK(a.blocking_calls[1].total == dur(40));
    CHECK(a.blocking_calls[2].reason == "read");
    CHECK(a.blocking_calls[2].count == 2);
    CHECK(a.blocking_calls[2].p50 == dur(2));
}

TEST_CASE("loop analysis: GIL waits are marked apart from other futex waits, and the loop's own GIL stall is one") {
    Rec r;
    StackId handler = r.in_callback({r.coro("legacy_handler", 12)});
    StackId loop = r.in_loop();
    r.wait(-1, 0, 10);
    // A callback: 100 ms on CPU, 30 ms asleep for the GIL, 20 ms on a futex of its own (a lock).
    r.on_range(11, 110, handler);
    r.off(111, 30, handler, SYS_futex, kOffGil);
    r.off(141, 20, handler, SYS_futex, 0);
    r.wait(10, 161, 170);
    // After a selector wait, the loop waits 120 ms for the GIL in its own code: not a callback.
    r.on(171, loop);
    r.off(172, 120, loop, SYS_futex, kOffGil);
    r.on(293, loop);
    r.wait(170, 294, 400);
    LoopAnalysis a = analyze(r.p);
    REQUIRE(a.slow_callbacks.size() == 2);
    const SlowCallback& own = a.slow_callbacks[1];  // longest first: 124 ms
    CHECK(own.callback == kGilStall);
    CHECK(own.gil_wait == dur(120));
    const SlowCallback& cb = a.slow_callbacks[0];  // 151 ms
    CHECK(cb.callback == "legacy_handler (app.py:12)");
    CHECK(cb.gil_wait == dur(30));
    REQUIRE(cb.blocking.size() == 2);
    CHECK(cb.blocking[0].gil);
    CHECK(cb.blocking[0].reason == "futex");
    CHECK_FALSE(cb.blocking[1].gil);
    // The blocking calls: the same stack and syscall, a GIL wait apart from the lock.
    int gil = 0, lock = 0;
    for (const BlockingCall& b : a.blocking_calls) {
        if (b.stack.back() != "legacy_handler (app.py:12)") continue;
        CHECK(b.reason == "futex");
        (b.gil ? gil : lock) += 1;
    }
    CHECK(gil == 1);
    CHECK(lock == 1);
    SlowCallbackTableOptions flat;
    flat.group = false;
    const std::string table = render_slow_callbacks_table(r.p, a, flat);
    INFO(table);
    CHECK(table.find("\u21b3 30.0 ms waiting for the GIL at legacy_handler (app.py:12)") != std::string::npos);
    CHECK(table.find("\u21b3 20.0 ms in futex at legacy_handler (app.py:12)") != std::string::npos);
    CHECK(table.find("<GIL wait>") != std::string::npos);
    // Flame graphs: a <GIL wait> leaf, not <off-CPU: futex>.
    bool leaf = false;
    for (const WeightedStack& ws : mode_stacks(r.p, FlameMode::Busy, find_loop_threads(r.p))) {
        if (ws.frames.back() == "<GIL wait>" && ws.frames[ws.frames.size() - 2] == "legacy_handler (app.py:12)") {
            leaf = ws.weight_us == 30000;
        }
    }
    CHECK(leaf);
    CHECK(off_cpu_leaf(SYS_futex, kOffGil) == "<GIL wait>");
    CHECK(off_cpu_leaf(SYS_futex, 0) == "<off-CPU: futex>");
}

TEST_CASE("syscall names") {
    CHECK(off_cpu_reason(230, 0) == "clock_nanosleep");
    CHECK(off_cpu_reason(202, kOffPreempted) == "futex");
    CHECK(off_cpu_reason(999, 0) == "syscall_999");
    CHECK(off_cpu_reason(kNoSyscall, kOffPreempted) == "preempted");
    CHECK(off_cpu_reason(kNoSyscall, 0) == "page fault/other");
    CHECK(x86_64_syscall_name(1000).empty());
#if defined(__x86_64__)
    // The table against this machine's own numbering.
    CHECK(x86_64_syscall_name(SYS_read) == "read");
    CHECK(x86_64_syscall_name(SYS_write) == "write");
    CHECK(x86_64_syscall_name(SYS_pread64) == "pread64");
    CHECK(x86_64_syscall_name(SYS_recvfrom) == "recvfrom");
    CHECK(x86_64_syscall_name(SYS_sendmsg) == "sendmsg");
    CHECK(x86_64_syscall_name(SYS_connect) == "connect");
    CHECK(x86_64_syscall_name(SYS_accept4) == "accept4");
    CHECK(x86_64_syscall_name(SYS_nanosleep) == "nanosleep");
    CHECK(x86_64_syscall_name(SYS_clock_nanosleep) == "clock_nanosleep");
    CHECK(x86_64_syscall_name(SYS_futex) == "futex");
    CHECK(x86_64_syscall_name(SYS_wait4) == "wait4");
    CHECK(x86_64_syscall_name(SYS_pselect6) == "pselect6");
    CHECK(x86_64_syscall_name(SYS_ppoll) == "ppoll");
    CHECK(x86_64_syscall_name(SYS_epoll_pwait) == "epoll_pwait");
    CHECK(x86_64_syscall_name(SYS_fdatasync) == "fdatasync");
    CHECK(x86_64_syscall_name(SYS_openat) == "openat");
    CHECK(x86_64_syscall_name(SYS_flock) == "flock");
    CHECK(x86_64_syscall_name(SYS_getrandom) == "getrandom");
    CHECK(x86_64_syscall_name(SYS_sched_yield) == "sched_yield");
#endif
}

TEST_CASE("flame modes: cpu, busy and wall") {
    Rec r;
    StackId s = r.in_callback({r.coro("h", 5)});
    r.wait(-1, 0, 100);  // 100 ms idle
    r.on_range(101, 103, s);
    r.off(104, 10, s, 230);
    const Tid worker{7};
    r.p.set_thread_name(worker, "worker");
    StackId w = r.p.intern_stack(std::vector<FrameId>{r.frame("work", "w.py", 1)});
    r.on(50, w, worker);
    r.off(60, 5, w, kNoSyscall, kOffPreempted, worker);
    const std::vector<Tid> loops = find_loop_threads(r.p);

    auto total = [](const std::vector<WeightedStack>& stacks) {
        std::uint64_t us = 0;
        for (const auto& ws : stacks) us += ws.weight_us;
        return us;
    };
    auto find = [](const std::vector<WeightedStack>& stacks, std::string_view leaf) -> const WeightedStack* {
        for (const auto& ws : stacks) {
            if (ws.frames.back() == leaf) return &ws;
        }
        return nullptr;
    };

    auto cpu = mode_stacks(r.p, FlameMode::Cpu, loops);
    CHECK(total(cpu) == 4000);
    CHECK_FALSE(find(cpu, "<off-CPU: clock_nanosleep>"));

    auto busy = mode_stacks(r.p, FlameMode::Busy, loops);
    CHECK(total(busy) == 4000 + 10000 + 5000);
    const WeightedStack* sleep = find(busy, "<off-CPU: clock_nanosleep>");
    REQUIRE(sleep);
    CHECK(sleep->weight_us == 10000);
    CHECK(sleep->frames.front() == "thread MainThread (100)");
    CHECK(sleep->frames[sleep->frames.size() - 2] == "h (app.py:5)");
    const WeightedStack* preempted = find(busy, "<off-CPU: preempted>");
    REQUIRE(preempted);
    CHECK(preempted->frames.front() == "thread worker (7)");
    CHECK_FALSE(find(busy, "<idle>"));

    auto wall = mode_stacks(r.p, FlameMode::Wall, loops);
    const WeightedStack* idle = find(wall, "<idle>");
    REQUIRE(idle);
    CHECK(idle->frames == std::vector<std::string>{"thread MainThread (100)", "<idle>"});
    CHECK(idle->weight_us == 100000);
    CHECK(total(wall) == total(busy) + 100000);

    // The window clips off-CPU intervals and the idle time.
    AnalysisFilter f;
    f.from_s = 0.050;
    f.to_s = 0.109;
    auto clipped = mode_stacks(r.p, FlameMode::Wall, loops, f);
    CHECK(find(clipped, "<off-CPU: clock_nanosleep>")->weight_us == 5000);
    CHECK(find(clipped, "<idle>")->weight_us == 50000);
    f.threads = {worker};
    auto only_worker = mode_stacks(r.p, FlameMode::Wall, loops, f);
    for (const auto& ws : only_worker) CHECK(ws.frames.front() == "thread worker (7)");

    CHECK(parse_flame_mode("wall") == FlameMode::Wall);
    CHECK(parse_flame_mode("Busy") == std::nullopt);
    CHECK(flame_mode_name(FlameMode::Cpu) == "cpu");
}

TEST_CASE("slow callbacks table: readable rows, blocking lines, safe and aligned names") {
    Rec r;
    const Tid wide{101};
    r.p.set_thread_name(kLoop, "Main\x1b[31mThread");
    r.p.set_thread_name(wide, "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E-loop");  // 日本語-loop
    for (Tid t : {kLoop, wide}) {
        StackId sleeping = r.in_callback({r.coro("blocking_handler", 31)});
        r.wait(-1, 0, 10, t);
        r.wait(10, 300, 310, t);
        r.on_range(11, 100, sleeping, t);
        r.off(100.5, 52.1, sleeping, 230, 0, t);
        r.off(153, 20, sleeping, 0, 0, t);
        r.off(174, 10, sleeping, kNoSyscall, kOffPreempted, t);
        r.off(185, 1, sleeping, 1, 0, t);
        r.on_range(186, 299, sleeping, t);
    }
    LoopAnalysis a = analyze(r.p);
    REQUIRE(a.slow_callbacks.size() == 2);
    SlowCallbackTableOptions flat;
    flat.group = false;  // --no-group: a row for each stall
    const std::string table = render_slow_callbacks_table(r.p, a, flat);
    INFO(table);
    CHECK(table.rfind("loopspy: 2 slow callbacks \u2265 100 ms on loop threads Main?[31mThread (100), ", 0) == 0);
    CHECK(table.find('\x1b') == std::string::npos);
    CHECK(table.find("\u21b3 52.1 ms in clock_nanosleep at blocking_handler (app.py:31)") != std::string::npos);
    CHECK(table.find("\u21b3 20.0 ms in read at blocking_handler (app.py:31)") != std::string::npos);
    CHECK(table.find("\u21b3 10.0 ms preempted at blocking_handler (app.py:31)") != std::string::npos);
    CHECK(table.find("\u21b3 1.0 ms in 1 other off-CPU interval\n") != std::string::npos);
    CHECK(table.find("2 iterations, busy 0.290 s") != std::string::npos);

    // Both rows put the callback in the same display column.
    std::vector<std::size_t> columns;
    std::size_t pos = 0;
    while ((pos = table.find('\n', pos)) != std::string::npos) {
        const std::size_t begin = pos + 1;
        const std::size_t end = table.find('\n', begin);
        if (end == std::string::npos) break;
        const std::string line = table.substr(begin, end - begin);
        const std::size_t at_cb = line.find("blocking_handler (app.py:31)");
        if (at_cb != std::string::npos && line.find("\u21b3") == std::string::npos) {
            columns.push_back(display_width(line.substr(0, at_cb)));
        }
        pos = begin;
    }
    REQUIRE(columns.size() == 2);
    CHECK(columns[0] == columns[1]);

    CHECK(terminal_safe("ok\xFF\n\xC2\x9B\xE2\x80\xAE") == "ok\xEF\xBF\xBD???");
    CHECK(display_width("\xE6\x97\xA5x") == 3);

    // By default the two stalls of blocking_handler are one row, the longer one, with their count,
    // total, p50 and max; its blocking calls are the longer one's.
    const std::string grouped = render_slow_callbacks_table(r.p, a);
    INFO(grouped);
    CHECK(grouped.find("  grouped by callback: 1 callback, a line each with its longest stall (--no-group lists all 2)\n") !=
          std::string::npos);
    const std::size_t rows = std::count(grouped.begin(), grouped.end(), '\n');
    CHECK(rows < std::count(table.begin(), table.end(), '\n'));
    {
        const Nanoseconds d0 = a.slow_callbacks[0].duration, d1 = a.slow_callbacks[1].duration;
        char expect[128];
        std::snprintf(expect, sizeof expect, "2 times, %.1f ms in all: p50 %.1f ms, max %.1f ms", (d0 + d1).ms(),
                      std::min(d0, d1).ms(), std::max(d0, d1).ms());
        CHECK(grouped.find(expect) != std::string::npos);
    }
    CHECK(grouped.find(" (the row: the longest)\n") != std::string::npos);

    SlowCallbackTableOptions few;
    few.group = false;
    few.max_callbacks = 1;
    few.blocking_per_callback = 0;
    const std::string short_table = render_slow_callbacks_table(r.p, a, few);
    CHECK(short_table.find("\u2026 and 1 more") != std::string::npos);
    CHECK(short_table.find("\u21b3 83.1 ms in 4 other off-CPU intervals") != std::string::npos);

    // Many intervals of one kind at one place are one line.
    Rec m;
    StackId burn = m.in_callback({m.coro("cpu_handler", 37), m.frame("burn_cpu", "app.py", 24)});
    m.wait(-1, 0, 10);
    m.wait(10, 300, 310);
    for (int i = 0; i < 100; ++i) {
        m.on(11 + 2.5 * i, burn);
        m.off(12 + 2.5 * i, 0.5, burn, kNoSyscall, kOffPreempted);
    }
    const std::string many = render_slow_callbacks_table(m.p, analyze(m.p));
    INFO(many);
    CHECK(many.find("\u21b3 50.0 ms preempted (100 times) at burn_cpu (app.py:24)\n") != std::string::npos);
    CHECK(many.find("other off-CPU") == std::string::npos);
}
