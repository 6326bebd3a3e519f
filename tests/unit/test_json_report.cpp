#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "recording/profile.hpp"
#include "reports/json_report.hpp"
#include "reports/loop_analysis.hpp"

using namespace loopspy;
using nlohmann::json;

namespace {

constexpr std::int64_t kStart = 1'000'000'000;
Nanoseconds at_ns(std::int64_t ns_since_start) { return Nanoseconds{kStart + ns_since_start}; }
constexpr std::int64_t kMs = 1'000'000;

/// One stdlib loop thread with a slow callback that sleeps and reads, a CPU-bound one, and a
/// non-loop thread. Names include invalid UTF-8.
Profile make_profile() {
    Profile p;
    p.info.pid = Pid{31337};
    p.info.python = PythonVersion{0x030C01F0};
    p.info.rate_hz = 1000;
    p.info.start = Nanoseconds{kStart};
    p.info.end = at_ns(2'500'000'000 + 123'456);
    p.lost.ringbuf_full = 2;
    p.lost.read_failed = 1;
    p.lost.off_cpu = 4;
    const Tid loop{10}, worker{11};
    p.set_thread_name(loop, "MainThread");
    p.set_thread_name(worker, "bad\xFFname");

    std::vector<FrameId> base = {
        p.intern_frame("<module>", "app.py", 1, 0),
        p.intern_frame("run", "/usr/lib/python3.12/asyncio/runners.py", 194, 0),
        p.intern_frame("Runner.run", "/usr/lib/python3.12/asyncio/runners.py", 118, 0),
        p.intern_frame("BaseEventLoop.run_until_complete", "/usr/lib/python3.12/asyncio/base_events.py", 671, 0),
        p.intern_frame("BaseEventLoop.run_forever", "/usr/lib/python3.12/asyncio/base_events.py", 638, 0),
        p.intern_frame("BaseEventLoop._run_once", "/usr/lib/python3.12/asyncio/base_events.py", 1987, 0),
        p.intern_frame("Handle._run", "/usr/lib/python3.12/asyncio/events.py", 84, 0),
    };
    auto stack = [&](std::vector<FrameId> inner) {
        std::vector<FrameId> f = base;
        f.insert(f.end(), inner.begin(), inner.end());
        return p.intern_stack(f);
    };
    const StackId sleeper = stack({p.intern_frame("blocking_handler", "app.py", 31, kFrameCoroutine)});
    const StackId burner = stack({p.intern_frame("cpu_h\xC3(andler", "app.py", 40, kFrameCoroutine),
                                  p.intern_frame("burn", "app.py", 5, 0)});
    auto on = [&](std::int64_t t, StackId s, Tid tid) {
        SampleRecord r{tid, at_ns(t), Nanoseconds{kMs}, s};
        p.add_sample(r);
    };
    auto off = [&](std::int64_t t, std::int64_t len, StackId s, std::int32_t sc) {
        SampleRecord r{loop, at_ns(t), Nanoseconds{len}, s};
        r.kind = SampleKind::OffCpu;
        r.syscall = sc;
        p.add_sample(r);
    };
    auto wait = [&](std::int64_t prev, std::int64_t enter, std::int64_t leave, std::uint32_t folded = 0) {
        SelectorWait w{loop};
        w.syscall = 232;
        w.previous_leave = prev < 0 ? Nanoseconds{0} : at_ns(prev);
        w.enter = at_ns(enter);
        w.leave = at_ns(leave);
        w.folded_waits = folded;
        w.folded_wait_time = Nanoseconds{folded * 100'000};
        w.folded_busy_time = Nanoseconds{folded * 200'000};
        p.add_selector_wait(w);
    };
    wait(-1, 0, 10 * kMs);
    // Busy 10 ms .. 160.1234567 ms: the sleeper.
    for (std::int64_t t = 11; t < 20; ++t) on(t * kMs, sleeper, loop);
    off(20 * kMs, 140 * kMs + 123'456, sleeper, 230);
    off(160 * kMs + 123'456, 1000, sleeper, 0);  // 1 µs read
    wait(10 * kMs, 160 * kMs + 124'567, 500 * kMs);
    // Busy 500 .. 700 ms: the burner.
    for (std::int64_t t = 501; t < 700; ++t) on(t * kMs, burner, loop);
    wait(500 * kMs, 700 * kMs, 800 * kMs, 3);
    for (std::int64_t t = 0; t < 50; ++t) on(t * kMs, burner, worker);
    return p;
}

std::set<std::string> keys_of(const json& j) {
    std::set<std::string> out;
    for (auto it = j.begin(); it != j.end(); ++it) out.insert(it.key());
    return out;
}

bool is_ms(const json& j) { return j.is_number() && !j.is_boolean(); }

}  // namespace

TEST_CASE("json report: every field, with its type") {
    const Profile p = make_profile();
    const LoopAnalysis a = analyze_loops(p, {});
    const std::string text = render_json_report(p, a);
    REQUIRE(!text.empty());
    CHECK(text.back() == '\n');
    const json j = json::parse(text);

    CHECK(keys_of(j) == std::set<std::string>{"python_version", "pid", "duration_s", "samples", "loop_threads",
                                              "slow_callbacks", "longest_callback", "blocking_calls", "loop", "processes", "rate"});
    CHECK(j["longest_callback"].is_null());  // there are slow callbacks
    // The profile does not know the target's CPU time: the rate achieved is not guessed.
    CHECK(j["rate"]["requested_hz"] == p.info.rate_hz);
    CHECK(j["rate"]["achieved_hz"].is_null());
    {
        Profile q = make_profile();
        q.lost.target_cpu_ns = 1'000'000'000;  // one second of CPU, 258 samples delivered + 7 lost of them
        const json r = json::parse(render_json_report(q, analyze_loops(q, {})));
        CHECK(r["rate"]["achieved_hz"].get<double>() == doctest::Approx(258 + q.lost.ringbuf_full + q.lost.read_failed +
                                                                         q.lost.no_thread_state + q.lost.native_thread));
    }
    CHECK(j["python_version"] == "3.12.1");
    CHECK(j["pid"].is_number_integer());
    CHECK(j["pid"] == 31337);
    CHECK(is_ms(j["duration_s"]));
    CHECK(j["duration_s"].get<double>() == doctest::Approx(2.5).epsilon(1e-12));

    REQUIRE(j["samples"].is_object());
    CHECK(keys_of(j["samples"]) == std::set<std::string>{"on_cpu", "off_cpu", "lost"});
    CHECK(j["samples"]["on_cpu"] == 9 + 199 + 50);
    CHECK(j["samples"]["off_cpu"] == 2);
    CHECK(j["samples"]["lost"] == 7);
    for (const auto& v : j["samples"]) CHECK(v.is_number_unsigned());

    REQUIRE(j["loop_threads"].is_array());
    CHECK(j["loop_threads"] == json::array({10}));

    REQUIRE(j["slow_callbacks"].is_array());
    REQUIRE(j["slow_callbacks"].size() == 2);
    for (const auto& cb : j["slow_callbacks"]) {
        CHECK(keys_of(cb) == std::set<std::string>{"start_ms", "duration_ms", "on_cpu_ms", "off_cpu_ms", "callback",
                                                   "task", "culprit", "thread", "pid", "stack", "blocking"});
        for (const char* k : {"start_ms", "duration_ms", "on_cpu_ms", "off_cpu_ms"}) CHECK(is_ms(cb[k]));
        CHECK(cb["callback"].is_string());
        CHECK(cb["task"].is_null());
        CHECK(cb["thread"] == 10);
        CHECK(cb["pid"] == 31337);  // a thread with no recorded process is the target's
        REQUIRE(cb["stack"].is_array());
        REQUIRE(!cb["stack"].empty());
        for (const auto& f : cb["stack"]) CHECK(f.is_string());
        CHECK(cb["stack"][0] == "<module> (app.py:1)");
        REQUIRE(cb["blocking"].is_array());
        for (const auto& b : cb["blocking"]) {
            CHECK(keys_of(b) == std::set<std::string>{"syscall", "gil", "gil_holder", "duration_ms", "stack"});
            CHECK(b["syscall"].is_string());
            CHECK(b["gil"] == false);
            CHECK(is_ms(b["duration_ms"]));
            CHECK(b["stack"].is_array());
        }
    }
    // Longest first: the burner (200 ms), then the sleeper (150.124567 ms).
    const json& burn = j["slow_callbacks"][0];
    CHECK(burn["callback"] == "cpu_h\xEF\xBF\xBD(andler (app.py:40)");  // invalid UTF-8 replaced
    CHECK(burn["duration_ms"] == 200.0);
    CHECK(burn["start_ms"] == 500.0);
    CHECK(burn["on_cpu_ms"] == 200.0);
    CHECK(burn["off_cpu_ms"] == 0.0);
    CHECK(burn["blocking"].empty());
    CHECK(burn["culprit"] == "burn (app.py:5)");  // the innermost frame of the program's own code
    const json& sleep = j["slow_callbacks"][1];
    CHECK(sleep["callback"] == "blocking_handler (app.py:31)");
    CHECK(sleep["culprit"] == "blocking_handler (app.py:31)");
    CHECK(sleep["start_ms"] == 10.0);
    CHECK(sleep["duration_ms"] == 150.125);  // 150.124567 ms, rounded to 3 decimals
    CHECK(sleep["off_cpu_ms"] == 140.124);   // 140.123456 + 0.001
    CHECK(sleep["on_cpu_ms"] == 10.0);
    REQUIRE(sleep["blocking"].size() == 2);
    CHECK(sleep["blocking"][0]["syscall"] == "clock_nanosleep");
    CHECK(sleep["blocking"][0]["duration_ms"] == 140.123);
    CHECK(sleep["blocking"][0]["stack"].back() == "blocking_handler (app.py:31)");
    CHECK(sleep["blocking"][1]["syscall"] == "read");
    CHECK(sleep["blocking"][1]["duration_ms"] == 0.001);

    REQUIRE(j["blocking_calls"].is_array());
    REQUIRE(j["blocking_calls"].size() == 2);
    for (const auto& b : j["blocking_calls"]) {
        CHECK(keys_of(b) == std::set<std::string>{"pid", "stack", "syscall", "gil", "gil_holders", "culprit", "count",
                                                  "total_ms", "max_ms", "p50_ms", "p99_ms"});
        CHECK(b["gil"] == false);
        CHECK(b["culprit"] == "blocking_handler (app.py:31)");
        CHECK(b["pid"] == 31337);
        CHECK(b["stack"].is_array());
        CHECK(b["syscall"].is_string());
        CHECK(b["count"].is_number_unsigned());
        for (const char* k : {"total_ms", "max_ms", "p50_ms", "p99_ms"}) CHECK(is_ms(b[k]));
    }
    CHECK(j["blocking_calls"][0]["syscall"] == "clock_nanosleep");
    CHECK(j["blocking_calls"][0]["count"] == 1);
    CHECK(j["blocking_calls"][0]["total_ms"] == 140.123);
    CHECK(j["blocking_calls"][0]["p99_ms"] == 140.123);

    REQUIRE(j["loop"].is_object());
    CHECK(keys_of(j["loop"]) == std::set<std::string>{"iterations", "busy_ms", "idle_ms", "per_thread"});
    CHECK(j["loop"]["iterations"] == 3 + 3);
    CHECK(j["loop"]["busy_ms"].get<double>() == doctest::Approx(150.125 + 200 + 0.6).epsilon(1e-12));
    CHECK(j["loop"]["idle_ms"] == doctest::Approx(10 + 339.875 + 100 + 0.3).epsilon(1e-12));
    REQUIRE(j["loop"]["per_thread"].is_array());
    REQUIRE(j["loop"]["per_thread"].size() == 1);
    const json& t = j["loop"]["per_thread"][0];
    CHECK(keys_of(t) == std::set<std::string>{"thread", "pid", "iterations", "busy_ms", "idle_ms"});
    CHECK(t["thread"] == 10);
    CHECK(t["pid"] == 31337);

    // One process, the target, with its loop summed.
    REQUIRE(j["processes"].is_array());
    REQUIRE(j["processes"].size() == 1);
    const json& proc = j["processes"][0];
    CHECK(keys_of(proc) == std::set<std::string>{"pid", "command", "python_version", "loop_threads", "loop"});
    CHECK(proc["pid"] == 31337);
    CHECK(proc["python_version"] == "3.12.1");
    CHECK(proc["loop_threads"] == json::array({10}));
    CHECK(proc["loop"]["iterations"] == 6);
    CHECK(proc["loop"]["busy_ms"] == j["loop"]["busy_ms"]);
    CHECK(t["iterations"] == 6);
    CHECK(t["busy_ms"] == j["loop"]["busy_ms"]);

    // Milliseconds never carry more than 3 decimals in the text.
    CHECK(text.find("150.125") != std::string::npos);
    CHECK(text.find("150.1245") == std::string::npos);
}

TEST_CASE("json report: the same profile gives the same bytes") {
    const Profile p1 = make_profile();
    const Profile p2 = make_profile();
    const std::string a = render_json_report(p1, analyze_loops(p1, {}));
    CHECK(a == render_json_report(p1, analyze_loops(p1, {})));
    CHECK(a == render_json_report(p2, analyze_loops(p2, {})));
    LoopAnalysisOptions by_time;
    by_time.order = CallbackOrder::Time;
    const std::string b = render_json_report(p1, analyze_loops(p1, by_time));
    CHECK(b == render_json_report(p2, analyze_loops(p2, by_time)));
    CHECK(a != b);  // only the order of the callbacks differs
    CHECK(a.size() == b.size());
}

TEST_CASE("json report: invalid UTF-8 anywhere does not throw") {
    Profile p = make_profile();
    const Tid loop{10};
    const StackId hostile = p.intern_stack(std::vector<FrameId>{
        p.intern_frame("\xFF\xFE", "\xC0\xAF.py", 1, 0), p.intern_frame("ok", "\xED\xA0\x80", 2, kFrameCoroutine)});
    SampleRecord r{loop, at_ns(900 * kMs), Nanoseconds{5 * kMs}, hostile};
    r.kind = SampleKind::OffCpu;
    r.syscall = 999;
    p.add_sample(r);
    std::string text;
    CHECK_NOTHROW(text = render_json_report(p, analyze_loops(p, {})));
    const json j = json::parse(text);
    bool found = false;
    for (const auto& b : j["blocking_calls"]) {
        if (b["syscall"] == "syscall_999") {
            found = true;
            CHECK(b["stack"][0] == "\xEF\xBF\xBD\xEF\xBF\xBD (\xEF\xBF\xBD\xEF\xBF\xBD.py:1)");
        }
    }
    CHECK(found);
}

TEST_CASE("json report: an empty recording and version strings") {
    Profile p;
    p.info.pid = Pid{1};
    p.info.python = PythonVersion{0x030E00C1};
    p.info.start = Nanoseconds{kStart};
    p.info.end = Nanoseconds{kStart + 1'234'567'890};
    const json j = json::parse(render_json_report(p, analyze_loops(p, {})));
    CHECK(j["python_version"] == "3.14.0rc1");
    CHECK(j["duration_s"] == 1.235);
    CHECK(j["loop_threads"].is_array());
    CHECK(j["loop_threads"].empty());
    CHECK(j["slow_callbacks"].is_array());
    CHECK(j["blocking_calls"].is_array());
    CHECK(j["loop"]["iterations"] == 0);
    CHECK(j["loop"]["busy_ms"] == 0.0);
    CHECK(j["loop"]["per_thread"].is_array());
    CHECK(j["samples"]["lost"] == 0);

    CHECK(PythonVersion{0x030B04A2}.text() == "3.11.4a2");
    CHECK(PythonVersion{0x030F00B1}.text() == "3.15.0b1");
    CHECK(rounded_ms(Nanoseconds{1'234'567}) == 1.235);
    CHECK(rounded_ms(Nanoseconds{499}) == 0.0);
    CHECK(rounded_ms(Nanoseconds{-1'500}) == -0.002);

    // A window narrows duration_s to its own length.
    Profile q = make_profile();
    LoopAnalysisOptions o;
    o.filter.from_s = 0.5;
    o.filter.to_s = 1.0;
    const json w = json::parse(render_json_report(q, analyze_loops(q, o)));
    CHECK(w["duration_s"] == 0.5);
    CHECK(w["slow_callbacks"].size() == 1);
}

TEST_CASE("culprit: the program's own code is what is not the standard library or an installed package") {
    CulpritRules rules;
    CHECK(rules.own_code("/srv/app/handlers.py"));
    CHECK(rules.own_code("app.py"));
    CHECK(!rules.own_code("/usr/lib/python3.11/asyncio/events.py"));
    CHECK(!rules.own_code("/root/.pyenv/versions/3.12.1/lib/python3.12/asyncio/base_events.py"));
    CHECK(!rules.own_code("/opt/py/lib/python3.13t/json/decoder.py"));
    CHECK(!rules.own_code("<frozen runpy>"));
    CHECK(!rules.own_code("/usr/lib/python3/dist-packages/aiohttp/web_protocol.py"));
    CHECK(!rules.own_code("/venv/lib/python3.12/site-packages/sqlalchemy/engine/base.py"));
    CHECK(rules.own_code("/srv/lib/python_helpers/x.py"));  // not a version directory
    rules.include = {"*/site-packages/mycompany/*"};
    rules.exclude = {"/srv/app/vendored/*"};
    CHECK(rules.own_code("/venv/lib/python3.12/site-packages/mycompany/db.py"));
    CHECK(!rules.own_code("/srv/app/vendored/six.py"));
    CHECK(rules.own_code("/srv/app/handlers.py"));
}
