// Which task a sample ran in (reports/task_attribution.hpp): decided from task snapshots, never
// charged to a task that was not seen alive while the sample's coroutine ran.
#include <doctest/doctest.h>

#include <cstring>

#include "recording/profile.hpp"
#include "reports/task_attribution.hpp"
#include "symbolizer/asyncio/tasks_asyncio_debug.hpp"

using namespace loopspy;

namespace {

constexpr std::int64_t kMs = 1'000'000;
const Tid kLoop{100};

struct Builder {
    Profile p;
    Builder() {
        p.info.rate_hz = 1000;
        p.info.start = Nanoseconds{0};
        p.info.end = Nanoseconds{10'000 * kMs};
    }
    StackId stack_in(const std::string& coro) {
        return p.intern_stack(std::vector<FrameId>{p.intern_frame("Handle._run", "events.py", 84, 0),
                                                   p.intern_frame(coro, "app.py", 10, kFrameCoroutine),
                                                   p.intern_frame("leaf", "app.py", 20, 0)});
    }
    TaskId task(std::uint64_t addr, std::uint64_t coro, const std::string& name, const std::string& coro_name) {
        return p.intern_task({addr, coro, p.intern_string(name), p.intern_string(coro_name)});
    }
    void sample(std::int64_t ms, std::uint64_t coro, StackId stack) {
        SampleRecord s;
        s.tid = kLoop;
        s.time = Nanoseconds{ms * kMs};
        s.weight = Nanoseconds{kMs};
        s.stack = stack;
        s.coro = coro;
        p.add_sample(s);
    }
    void snapshot(std::int64_t ms, std::vector<TaskEntry> changed, std::vector<TaskId> removed = {}) {
        p.add_task_snapshot({Nanoseconds{ms * kMs}, std::move(changed), std::move(removed)});
    }
    void wait(std::int64_t enter_ms, std::int64_t leave_ms) {
        SelectorWait w;
        w.tid = kLoop;
        w.enter = Nanoseconds{enter_ms * kMs};
        w.leave = Nanoseconds{leave_ms * kMs};
        p.add_selector_wait(w);
    }
};

TaskEntry running(TaskId id, std::vector<TaskId> by = {}) { return {id, TaskState::Running, 0, std::move(by)}; }

}  // namespace

TEST_CASE("task attribution: a sample between two snapshots that both saw its task belongs to it") {
    Builder b;
    StackId st = b.stack_in("work");
    TaskId a = b.task(0x1000, 0xa000, "worker-a", "work");
    b.snapshot(100, {running(a)});
    b.sample(150, 0xa000, st);
    b.snapshot(200, {});
    b.sample(250, 0xa000, st);  // after the last snapshot that saw it, in a later step: unknown
    b.wait(240, 245);
    b.snapshot(300, {}, {a});
    TaskAttribution t(b.p);
    CHECK(t.task_of(0) == a);
    CHECK(!t.task_of(1));
}

TEST_CASE("task attribution: a task first seen during the sample's step owns the whole step") {
    Builder b;
    StackId st = b.stack_in("work");
    TaskId a = b.task(0x1000, 0xa000, "worker-a", "work");
    b.snapshot(100, {});
    for (int ms = 101; ms <= 130; ++ms) b.sample(ms, 0xa000, st);  // one step, 30 ms
    b.snapshot(120, {running(a)});                                   // seen in the middle of it
    b.wait(131, 140);
    b.sample(141, 0xa000, st);  // the next step: the task was not seen around it
    b.snapshot(200, {}, {a});
    TaskAttribution t(b.p);
    for (std::size_t i = 0; i < 30; ++i) CHECK(t.task_of(i) == a);
    CHECK(!t.task_of(30));
}

TEST_CASE("task attribution: a reused coroutine address is never charged to the task seen before or after") {
    Builder b;
    StackId st = b.stack_in("short_job");
    TaskId first = b.task(0x1000, 0xa000, "short-1", "short_job");
    TaskId second = b.task(0x1000, 0xa000, "short-2", "short_job");  // same addresses, a new task
    b.snapshot(100, {running(first)});
    b.wait(101, 102);
    b.sample(103, 0xa000, st);  // some short task in between, seen by no snapshot
    b.wait(104, 105);
    b.snapshot(110, {running(second)}, {first});
    TaskAttribution t(b.p);
    CHECK(!t.task_of(0));
}

TEST_CASE("task attribution: the coroutine's name must match the sample's outermost coroutine frame") {
    Builder b;
    TaskId a = b.task(0x1000, 0xa000, "worker-a", "something_else");
    b.snapshot(100, {running(a)});
    b.sample(150, 0xa000, b.stack_in("work"));
    b.snapshot(200, {});
    TaskAttribution t(b.p);
    CHECK(!t.task_of(0));
}

TEST_CASE("task attribution: async prefixes climb the awaiting tasks and flag a shared task") {
    Builder b;
    TaskId root = b.task(0x1000, 0xa000, "root", "main");
    TaskId w1 = b.task(0x2000, 0xb000, "w1", "worker");
    TaskId w2 = b.task(0x3000, 0xc000, "w2", "worker");
    TaskId shared = b.task(0x4000, 0xd000, "shared", "fetch");
    StackId root_chain = b.p.intern_stack(std::vector<FrameId>{
        b.p.intern_frame("main", "app.py", 5, kFrameCoroutine), b.p.intern_frame("<awaiting _GatheringFuture>", "", 0, kFrameSpecial)});
    StackId w_chain = b.p.intern_stack(std::vector<FrameId>{b.p.intern_frame("worker", "app.py", 9, kFrameCoroutine)});
    b.snapshot(100, {{root, TaskState::Suspended, root_chain, {}},
                     {w1, TaskState::Suspended, w_chain, {root}},
                     {w2, TaskState::Suspended, w_chain, {root}},
                     {shared, TaskState::Running, 0, {w2, w1}}});
    TaskAttribution t(b.p);
    auto prefix = t.async_prefix(shared, Nanoseconds{150 * kMs});
    std::vector<std::string> expected = {"<task> root", "main (app.py:5)", "<task> w1", "worker (app.py:9)",
                                         "<task> shared (awaited by 2 tasks)"};
    CHECK(prefix == expected);
    // Each snapshot's state holds until the next: 9.9 s suspended for root to the end.
    auto waits = t.suspensions(Nanoseconds{0}, Nanoseconds{10'000 * kMs});
    Nanoseconds root_wait{0};
    for (const auto& w : waits) {
        if (w.task == root) root_wait += w.time;
    }
    CHECK(root_wait.value == 9'900 * kMs);
}

TEST_CASE("AsyncioDebug section: offsets are read and checked against their structs") {
    std::uint64_t v[13] = {200, 120, 96, 97, 98, 160, 184, 5000, 4000, 8000, 7000, 7008, 7016};
    std::byte bytes[sizeof v];
    std::memcpy(bytes, v, sizeof v);
    auto o = parse_asyncio_debug(bytes);
    REQUIRE(o.ok());
    CHECK(o->task_name == 120);
    CHECK(o->task_node == 184);
    CHECK(o->thread_tasks_head == 7016);
    v[6] = 190;  // the list node would run past the task
    std::memcpy(bytes, v, sizeof v);
    CHECK(!parse_asyncio_debug(bytes).ok());
    CHECK(!parse_asyncio_debug(std::span<const std::byte>(bytes, 64)).ok());
}

TEST_CASE("task attribution: an awaiting task caught running before its await is drawn where it then waits") {
    Builder b;
    TaskId root = b.task(0x1000, 0xa000, "root", "main");
    TaskId worker = b.task(0x2000, 0xb000, "worker", "work");
    StackId chain = b.p.intern_stack(std::vector<FrameId>{b.p.intern_frame("main", "app.py", 5, kFrameCoroutine)});
    b.snapshot(100, {running(root), {worker, TaskState::Suspended, 0, {root}}});
    b.snapshot(200, {{root, TaskState::Suspended, chain, {}}, running(worker, {root})});
    TaskAttribution t(b.p);
    std::vector<std::string> expected = {"<task> root", "main (app.py:5)", "<task> worker"};
    CHECK(t.async_prefix(worker, Nanoseconds{150 * kMs}) == expected);
}

TEST_CASE("task attribution: a task found waiting that runs before the next snapshot waited only the rest") {
    Builder b;
    TaskId w = b.task(0x1000, 0xa000, "worker", "work");
    StackId not_started = b.p.intern_stack(std::vector<FrameId>{b.p.intern_frame("<not started>", "", 0, kFrameSpecial)});
    StackId at_sleep = b.p.intern_stack(std::vector<FrameId>{b.p.intern_frame("work", "app.py", 10, kFrameCoroutine),
                                                             b.p.intern_frame("sleep", "tasks.py", 600, kFrameCoroutine)});
    // Created at 100 ms, not started yet; it first runs at 120 ms and runs 20 ms of the 100 until
    // the next snapshot, which finds it waiting in its sleep, as the last one does at 300 ms.
    b.snapshot(100, {{w, TaskState::Suspended, not_started, {}}});
    for (std::int64_t ms = 120; ms < 140; ++ms) b.sample(ms, 0xa000, b.stack_in("work"));
    b.snapshot(200, {{w, TaskState::Suspended, at_sleep, {}}});
    // Caught running at 300 ms: of the 100 ms until the next snapshot it ran 10.
    b.snapshot(300, {running(w)});
    for (std::int64_t ms = 300; ms < 310; ++ms) b.sample(ms, 0xa000, b.stack_in("work"));
    b.snapshot(400, {{w, TaskState::Suspended, at_sleep, {}}});
    b.snapshot(500, {}, {w});
    TaskAttribution t(b.p);
    Nanoseconds before_start{0}, sleeping{0};
    for (const auto& s : t.suspensions(Nanoseconds{0}, Nanoseconds{10'000 * kMs})) {
        REQUIRE(s.task == w);
        (s.stack == not_started ? before_start : sleeping) += s.time;
    }
    CHECK(before_start.value == 20 * kMs);  // 100 to 120 ms
    // 120-200 less 20 ran, 200-300, 300-400 less 10 ran, 400-500 (seen last at 400; gone at 500).
    CHECK(sleeping.value == (60 + 100 + 90 + 100) * kMs);
    // Ran 30 ms, waited 370: the 400 ms it was seen alive.
    CHECK(before_start.value + sleeping.value + 30 * kMs == 400 * kMs);
}
