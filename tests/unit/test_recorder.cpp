// The recording engine, driven by canned kernel events instead of BPF: what a user's recording
// holds is what the kernel sent, named from the target's memory, with every loss counted. The
// "target" is this test process, holding fake CPython 3.12 code objects (fake_target.hpp).
#include <doctest/doctest.h>

#include <atomic>
#include <deque>

#include "session/recorder.hpp"
#include "symbolizer/process/proc_maps.hpp"
#include "tests/unit/fake_target.hpp"

using namespace loopspy;
using loopspy::testing::FakeTarget;

namespace {

constexpr std::size_t kHandlerCode = FakeTarget::kCode;         // handle_request
constexpr std::size_t kRenderCode = FakeTarget::kCode + 1024;   // render_page, called by it
constexpr Tid kLoop{4242};

/// A kernel side that replays what a test queued: all of it at the first poll.
class CannedEvents final : public EventSource {
public:
    struct Event {
        RawSample sample;
        std::vector<loopspy_frame> frames;  // innermost first
        std::optional<SelectorWait> wait;
    };

    void on_cpu(Nanoseconds t, std::vector<loopspy_frame> frames, std::uint32_t flags = 0) {
        Event e;
        e.sample.kind = LOOPSPY_EVENT_ON_CPU;
        e.sample.tid = kLoop;
        e.sample.pid = Pid{getpid()};
        e.sample.timestamp = t;
        e.sample.flags = flags;
        e.frames = std::move(frames);
        events_.push_back(std::move(e));
    }
    void off_cpu(Nanoseconds t, Nanoseconds duration, std::int32_t syscall, std::vector<loopspy_frame> frames) {
        Event e;
        e.sample.kind = LOOPSPY_EVENT_OFF_CPU;
        e.sample.tid = kLoop;
        e.sample.pid = Pid{getpid()};
        e.sample.timestamp = t;
        e.sample.duration = duration;
        e.sample.syscall = syscall;
        e.frames = std::move(frames);
        events_.push_back(std::move(e));
    }
    void selector_wait(const SelectorWait& w) {
        Event e;
        e.wait = w;
        events_.push_back(std::move(e));
    }

    Result<void> start(std::span<const Tid> threads) override {
        started_with = threads.size();
        return {};
    }
    Result<void> publish_thread_state(Tid, RemoteAddr) override { return {}; }
    Result<void> publish_gils(Pid, std::span<const RemoteAddr> g, std::uint64_t, std::uint64_t) override {
        gils.assign(g.begin(), g.end());
        return {};
    }
    std::vector<RemoteAddr> gils;
    Result<void> publish_task_finder(Pid, const loopspy_task_finder&) override { return {}; }
    void forget_thread_state(Tid) override {}
    Result<void> follow_process(Pid) override { return {}; }
    void stop_sampling(Pid) override {}
    void forget_process(Pid) override {}
    Result<int> poll(int, const Handlers& h) override {
        int n = 0;
        for (Event& e : events_) {
            if (e.wait) {
                h.selector_wait(*e.wait);
            } else {
                e.sample.frames = e.frames;
                h.sample(e.sample);
            }
            ++n;
        }
        events_.clear();
        drained = true;
        return n;
    }
    void mark_shape_known(std::uint64_t shape) override { shapes_marked.push_back(shape); }
    SamplerStats stats() const override { return stats_; }
    std::uint64_t unknown_thread_samples() const override { return unknown_total; }
    std::vector<UnknownThread> take_unknown_threads() override { return std::exchange(unknown, {}); }

    SamplerStats stats_;
    std::vector<UnknownThread> unknown;
    std::uint64_t unknown_total = 0;
    std::vector<std::uint64_t> shapes_marked;
    std::size_t started_with = 99;
    bool drained = false;

private:
    std::deque<Event> events_;
};

loopspy_frame frame(const FakeTarget& t, std::size_t code) { return loopspy_frame{t.heap.addr(code), 0, 0}; }

std::vector<std::string> names(const Profile& p, StackId stack) {
    std::vector<std::string> out;
    for (FrameId f : p.stack(stack)) out.emplace_back(p.string(p.frame(f).name));
    return out;
}

struct Session {
    FakeTarget target;
    Profile profile;
    CannedEvents* events = nullptr;
    std::unique_ptr<Recorder> recorder;

    explicit Session(Tid python_thread = Tid{0}) {
        if (python_thread.value != 0) target.write_thread_list(python_thread);
        target.write_code(kHandlerCode, FakeTarget::kHandler, 10);
        target.write_code(kRenderCode, FakeTarget::kRender, 40);
        auto source = std::make_unique<CannedEvents>();
        events = source.get();
        RecorderOptions options;
        options.rate_hz = 1000;
        options.task_rate_hz = 0;
        auto r = Recorder::start(Pid{static_cast<int>(::getpid())}, target.interp, options, profile, std::move(source));
        REQUIRE(r.ok());
        recorder = std::move(r).value();
    }

    /// Records until the canned events are drained (the "target" then exits).
    RecordSummary run() {
        std::atomic<bool> stop{false};
        auto r = recorder->run(stop, [this] { return !events->drained; }, [] { return Result<void>{}; });
        REQUIRE(r.ok());
        return *r;
    }
};

}  // namespace

TEST_CASE("a user's samples are named outermost first, each weighing one sampling period") {
    Session s;
    const auto handler = frame(s.target, kHandlerCode), render = frame(s.target, kRenderCode);
    s.events->on_cpu(Nanoseconds{1'000'000}, {render, handler});
    s.events->on_cpu(Nanoseconds{2'000'000}, {render, handler});
    s.events->on_cpu(Nanoseconds{3'000'000}, {handler});
    RecordSummary summary = s.run();

    // Every thread of the target (this test process) is handed over, Python or not: in per-thread
    // mode each gets a timer of its own, which the threads it starts later inherit.
    CHECK(s.events->started_with == list_threads(Pid{static_cast<int>(::getpid())}).size());
    CHECK(summary.reason == StopReason::TargetExited);
    CHECK(summary.samples == 3);
    CHECK(summary.fully_symbolized == 3);
    const auto& samples = s.profile.samples();
    REQUIRE(samples.size() == 3);
    CHECK(names(s.profile, samples[0].stack) == std::vector<std::string>{"handle_request", "render_page"});
    CHECK(samples[0].stack == samples[1].stack);  // the same raw stack is one stack
    CHECK(names(s.profile, samples[2].stack) == std::vector<std::string>{"handle_request"});
    for (const SampleRecord& r : samples) {
        CHECK(r.kind == SampleKind::OnCpu);
        CHECK(r.weight == Nanoseconds{1'000'000});
        CHECK(r.tid == kLoop);
        CHECK(r.flags == 0);
    }
    CHECK(samples[1].time == Nanoseconds{2'000'000});
    // Each named shape is told to the kernel once, so its samples stop waking the recorder.
    CHECK(s.events->shapes_marked.size() == 2);
}

TEST_CASE("a blocking call keeps its exact duration and syscall; a selector wait is kept as sent") {
    Session s;
    const auto handler = frame(s.target, kHandlerCode);
    s.events->off_cpu(Nanoseconds{5'000'000}, Nanoseconds{150'000'123}, 230, {handler});
    SelectorWait w;
    w.tid = kLoop;
    w.syscall = 232;
    w.previous_leave = Nanoseconds{100};
    w.enter = Nanoseconds{200};
    w.leave = Nanoseconds{900};
    w.folded_waits = 3;
    w.folded_wait_time = Nanoseconds{40};
    w.folded_busy_time = Nanoseconds{50};
    s.events->selector_wait(w);
    RecordSummary summary = s.run();

    CHECK(summary.samples == 0);
    CHECK(summary.off_cpu_intervals == 1);
    REQUIRE(s.profile.samples().size() == 1);
    const SampleRecord& off = s.profile.samples()[0];
    CHECK(off.kind == SampleKind::OffCpu);
    CHECK(off.weight == Nanoseconds{150'000'123});
    CHECK(off.syscall == 230);
    CHECK(names(s.profile, off.stack) == std::vector<std::string>{"handle_request"});
    REQUIRE(s.profile.selector_waits().size() == 1);
    const SelectorWait& got = s.profile.selector_waits()[0];
    CHECK(got.tid == kLoop);
    CHECK(got.syscall == 232);
    CHECK(got.enter == Nanoseconds{200});
    CHECK(got.leave == Nanoseconds{900});
    CHECK(got.previous_leave == Nanoseconds{100});
    CHECK(got.folded_waits == 3);
    CHECK(got.folded_wait_time == Nanoseconds{40});
    CHECK(got.folded_busy_time == Nanoseconds{50});
}

TEST_CASE("what could not be named or was cut short says so in the stack and in the counts") {
    Session s;
    const auto handler = frame(s.target, kHandlerCode);
    const loopspy_frame freed{s.target.heap.addr(FakeTarget::kCode + 2048), 0, 0};  // no code object there
    s.events->on_cpu(Nanoseconds{1'000'000}, {freed, handler});
    s.events->on_cpu(Nanoseconds{2'000'000}, {handler}, LOOPSPY_SAMPLE_TRUNCATED);
    RecordSummary summary = s.run();

    CHECK(summary.samples == 2);
    CHECK(summary.fully_symbolized == 0);
    const auto& samples = s.profile.samples();
    REQUIRE(samples.size() == 2);
    CHECK(names(s.profile, samples[0].stack) == std::vector<std::string>{"handle_request", "<unknown>"});
    CHECK((samples[0].flags & kSampleUnnamed) != 0);
    CHECK(names(s.profile, samples[1].stack) == std::vector<std::string>{"<truncated>", "handle_request"});
    CHECK((samples[1].flags & kSampleTruncated) != 0);
}

TEST_CASE("samples the kernel lost are counted in the recording, never dropped silently") {
    Session s;
    s.events->stats_[LOOPSPY_STAT_LOST_RINGBUF] = 7;
    s.events->stats_[LOOPSPY_STAT_LOST_READ] = 5;
    s.events->stats_[LOOPSPY_STAT_LOST_OFF_CPU] = 2;
    s.events->stats_[LOOPSPY_STAT_LOST_SELECTOR] = 1;
    // Samples of a thread that never showed a Python thread state: a native thread's.
    s.events->unknown = {{Tid{999}, 11, 0}};
    s.events->unknown_total = 11;
    s.events->on_cpu(Nanoseconds{1'000'000}, {frame(s.target, kHandlerCode)});
    RecordSummary summary = s.run();

    CHECK(s.profile.lost.ringbuf_full == 7);
    CHECK(s.profile.lost.read_failed == 5);
    CHECK(s.profile.lost.off_cpu == 2);
    CHECK(s.profile.lost.selector == 1);
    CHECK(summary.native_thread_samples == 11);
    CHECK(s.profile.lost.no_thread_state == 0);
}

TEST_CASE("a Python thread seen without its thread state loses its samples and off-CPU intervals, counted") {
    const Tid python{static_cast<int>(::gettid())};
    Session s(python);
    s.events->stats_[LOOPSPY_STAT_LOST_OFF_CPU] = 2;
    // A Python thread of the target, seen before its thread state was published (or while it was
    // not), beside a native thread whose intervals are not part of the profile.
    s.events->unknown = {{python, 4, 3}, {Tid{999}, 11, 5}};
    s.events->unknown_total = 15;
    s.events->on_cpu(Nanoseconds{1'000'000}, {frame(s.target, kHandlerCode)});
    RecordSummary summary = s.run();

    CHECK(s.profile.lost.no_thread_state == 4);
    CHECK(s.profile.lost.off_cpu == 2 + 3);
    CHECK(summary.native_thread_samples == 11);
}

TEST_CASE("the achieved rate is stated, and what the kernel never delivered is lost, never a clean zero") {
    const Nanoseconds two_seconds{2'000'000'000};
    SUBCASE("nothing at all delivered of 2 s of CPU at 1 kHz") {
        const SamplingRate r = sampling_rate(0, two_seconds, 1000);
        CHECK(r.undelivered == 2000);
        auto w = rate_line(r, two_seconds);
        REQUIRE(w);
        CHECK(w->rfind("warning: achieved 0 Hz of 1000 Hz requested: the kernel delivered samples for 0% of the "
                       "target's 2.00 s of CPU: this profile is missing most of the target's CPU time (2000 samples "
                       "counted as lost, never delivered;", 0) == 0);
    }
    SUBCASE("what was delivered, even if lost or a native thread's, is the rate") {
        const SamplingRate r = sampling_rate(900 + 100 + 1000, two_seconds, 1000);
        CHECK(r.undelivered == 0);
        CHECK(*rate_line(r, two_seconds) == "achieved 1000 Hz of 1000 Hz requested (samples per second of the target's 2.00 s of CPU)");
    }
    SUBCASE("a tenth never delivered is a warning with the share, and counted") {
        const SamplingRate r = sampling_rate(1800, two_seconds, 1000);
        CHECK(r.undelivered == 200);
        auto w = rate_line(r, two_seconds);
        REQUIRE(w);
        CHECK(w->rfind("warning: achieved 900 Hz of 1000 Hz requested: the kernel delivered samples for 90% of the "
                       "target's 2.00 s of CPU (200 samples", 0) == 0);
        CHECK(w->find("missing most") == std::string::npos);
    }
    SUBCASE("a deficit within the CPU clock's resolution is not a loss") {
        const SamplingRate r = sampling_rate(1975, two_seconds, 1000);
        CHECK(r.undelivered == 0);
        CHECK(rate_line(r, two_seconds)->rfind("achieved 988 Hz of 1000 Hz requested", 0) == 0);
    }
    SUBCASE("at 100 kHz, throttled to a quarter") {
        const SamplingRate r = sampling_rate(50'000, two_seconds, 100'000);
        CHECK(r.undelivered == 150'000);
        CHECK(rate_line(r, two_seconds)->find("missing most") != std::string::npos);
    }
    SUBCASE("30 ms of CPU, half of it sampled: within what the 10 ms clock can tell, so no warning and no loss") {
        const Nanoseconds little{30'000'000};
        const SamplingRate r = sampling_rate(16, little, 1000);
        CHECK(r.undelivered == 0);
        CHECK_FALSE(rate_line(r, little));
    }
    SUBCASE("a short program with nothing sampled is still the loud zero") {
        const Nanoseconds quarter{250'000'000};
        const SamplingRate r = sampling_rate(0, quarter, 1000);
        CHECK(r.undelivered == 250);
        REQUIRE(rate_line(r, quarter));
        CHECK(rate_line(r, quarter)->find("missing most of the target's CPU time") != std::string::npos);
    }
    SUBCASE("a target that hardly ran is not called missing") {
        CHECK_FALSE(rate_line(sampling_rate(0, Nanoseconds{15'000'000}, 1000), Nanoseconds{15'000'000}));
        CHECK(sampling_rate(0, Nanoseconds{15'000'000}, 1000).undelivered == 0);
    }
}
