// The recording file format (recording/format.hpp, docs/recording-format.md): exact round trips,
// files cut or damaged anywhere, crafted files, size on a steady workload. Also writes the fuzz
// seed corpus when LOOPSPY_FUZZ_CORPUS names a directory (see scripts/fuzz.sh).
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "recording/format.hpp"
#include "recording/profile.hpp"
#include "reports/collapsed.hpp"
#include "reports/flame_modes.hpp"
#include "reports/json_report.hpp"
#include "reports/loop_analysis.hpp"
#include "reports/text_tables.hpp"

using namespace loopspy;
namespace rf = loopspy::recording_format;

namespace {

// ---------------------------------------------------------------- helpers

struct TempFile {
    std::string path;
    explicit TempFile(const std::string& name)
        : path((std::filesystem::temp_directory_path() /
                ("loopspy-test-" + std::to_string(::getpid()) + "-" + name))
                   .string()) {}
    ~TempFile() { ::unlink(path.c_str()); }
};

std::vector<std::byte> slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> out(s.size());
    if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
    return out;
}

std::vector<std::byte> bytes_of(std::string_view s) {
    std::vector<std::byte> out(s.size());
    if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
    return out;
}

std::string text_of(const std::vector<std::byte>& b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

Result<ReadResult> read_text(std::string_view s) {
    auto b = bytes_of(s);
    return read_recording_bytes(b);
}

// Raw encoders for crafting files.
std::string le16(std::uint16_t v) { return {static_cast<char>(v & 0xff), static_cast<char>(v >> 8)}; }
std::string le32(std::uint32_t v) {
    std::string s;
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return s;
}
std::uint32_t get32(const std::string& s, std::size_t at) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(s[at + i])) << (8 * i);
    return v;
}
std::string uv(std::uint64_t v) {
    std::string s;
    while (v >= 0x80) {
        s.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    s.push_back(static_cast<char>(v));
    return s;
}
std::string sv(std::int64_t v) {
    auto u = static_cast<std::uint64_t>(v);
    return uv((u << 1) ^ (std::uint64_t{0} - (u >> 63)));
}
std::string lstr(std::string_view s) { return uv(s.size()) + std::string(s); }

std::string file_header(std::uint16_t major = kFormatMajor, std::uint16_t minor = kFormatMinor) {
    return std::string(rf::kMagic, sizeof(rf::kMagic)) + le16(major) + le16(minor) + le32(0);
}

std::uint32_t crc_of(std::string_view s) {
    return static_cast<std::uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

/// A chunk header with a correct header checksum.
std::string chunk_header(std::uint32_t type, std::uint32_t flags, std::uint32_t stored, std::uint32_t raw_len,
                         std::uint32_t body_crc) {
    std::string h = le32(type) + le32(flags) + le32(stored) + le32(raw_len) + le32(body_crc);
    return h + le32(crc_of(h));
}

/// A chunk with correct checksums; `raw_len` overrides the uncompressed length field.
std::string chunk(std::uint32_t type, std::string_view raw, bool compress = false, std::uint32_t flags = 0,
                  std::optional<std::uint32_t> raw_len = std::nullopt) {
    std::string body(raw);
    if (compress) {
        uLongf n = compressBound(static_cast<uLong>(raw.size()));
        body.resize(n);
        REQUIRE(compress2(reinterpret_cast<Bytef*>(body.data()), &n, reinterpret_cast<const Bytef*>(raw.data()),
                          static_cast<uLong>(raw.size()), 6) == Z_OK);
        body.resize(n);
        flags |= rf::kChunkZlib;
    }
    return chunk_header(type, flags, static_cast<std::uint32_t>(body.size()),
                        raw_len.value_or(static_cast<std::uint32_t>(raw.size())), crc_of(body)) +
           body;
}

struct ChunkView {
    std::size_t offset;  // of its header
    std::size_t size;    // header + body
    std::uint32_t type;
};

std::vector<ChunkView> chunks_of(const std::string& file) {
    std::vector<ChunkView> out;
    std::size_t pos = rf::kFileHeaderSize;
    while (pos + rf::kChunkHeaderSize <= file.size()) {
        std::size_t size = rf::kChunkHeaderSize + get32(file, pos + 8);
        if (pos + size > file.size()) break;
        out.push_back({pos, size, get32(file, pos)});
        pos += size;
    }
    return out;
}

/// The same recording with every chunk stored uncompressed (checksums recomputed).
std::string uncompressed(const std::string& file) {
    std::string out = file.substr(0, rf::kFileHeaderSize);
    for (const ChunkView& c : chunks_of(file)) {
        std::uint32_t flags = get32(file, c.offset + 4), raw_len = get32(file, c.offset + 12);
        std::string body = file.substr(c.offset + rf::kChunkHeaderSize, c.size - rf::kChunkHeaderSize);
        if (flags & rf::kChunkZlib) {
            std::string raw(raw_len, '\0');
            uLongf n = raw_len;
            REQUIRE(uncompress(reinterpret_cast<Bytef*>(raw.data()), &n, reinterpret_cast<const Bytef*>(body.data()),
                               static_cast<uLong>(body.size())) == Z_OK);
            body = raw;
        }
        out += chunk(c.type, body);
    }
    return out;
}

void check_same(const Profile& a, const Profile& b) {
    CHECK(a.info == b.info);
    CHECK(a.lost == b.lost);
    REQUIRE(a.string_count() == b.string_count());
    for (std::size_t i = 0; i < a.string_count(); ++i) {
        CHECK(a.string(static_cast<StringId>(i)) == b.string(static_cast<StringId>(i)));
    }
    REQUIRE(a.frame_count() == b.frame_count());
    for (std::size_t i = 0; i < a.frame_count(); ++i) {
        CHECK(a.frame(static_cast<FrameId>(i)) == b.frame(static_cast<FrameId>(i)));
    }
    REQUIRE(a.stack_count() == b.stack_count());
    for (std::size_t i = 0; i < a.stack_count(); ++i) {
        auto x = a.stack(static_cast<StackId>(i)), y = b.stack(static_cast<StackId>(i));
        CHECK(std::vector<FrameId>(x.begin(), x.end()) == std::vector<FrameId>(y.begin(), y.end()));
    }
    CHECK(a.samples() == b.samples());
    CHECK(a.selector_waits() == b.selector_waits());
    CHECK(a.threads() == b.threads());
    CHECK(a.tasks() == b.tasks());
    CHECK(a.task_snapshots() == b.task_snapshots());
    CHECK(a.processes() == b.processes());
    CHECK(a.thread_processes() == b.thread_processes());
}

/// `prefix` holds a prefix of everything `whole` holds (strings, frames, stacks, samples, waits).
void check_prefix(const Profile& prefix, const Profile& whole) {
    REQUIRE(prefix.string_count() <= whole.string_count());
    for (std::size_t i = 0; i < prefix.string_count(); ++i) {
        REQUIRE(prefix.string(static_cast<StringId>(i)) == whole.string(static_cast<StringId>(i)));
    }
    REQUIRE(prefix.frame_count() <= whole.frame_count());
    REQUIRE(prefix.stack_count() <= whole.stack_count());
    REQUIRE(prefix.samples().size() <= whole.samples().size());
    for (std::size_t i = 0; i < prefix.samples().size(); ++i) {
        // A cut between a samples chunk and the chunks of their coroutines, tasks or GIL holders
        // loses only the latter.
        SampleRecord expected = whole.samples()[i];
        if (prefix.samples()[i].coro == 0) expected.coro = 0;
        if (prefix.samples()[i].task == 0) expected.task = 0;
        if (prefix.samples()[i].gil_holder.value == 0) expected.gil_holder = Tid{};
        REQUIRE(prefix.samples()[i] == expected);
    }
    REQUIRE(prefix.tasks().size() <= whole.tasks().size());
    for (std::size_t i = 0; i < prefix.tasks().size(); ++i) REQUIRE(prefix.tasks()[i] == whole.tasks()[i]);
    REQUIRE(prefix.task_snapshots().size() <= whole.task_snapshots().size());
    for (std::size_t i = 0; i < prefix.task_snapshots().size(); ++i) {
        REQUIRE(prefix.task_snapshots()[i] == whole.task_snapshots()[i]);
    }
    REQUIRE(prefix.selector_waits().size() <= whole.selector_waits().size());
    for (std::size_t i = 0; i < prefix.selector_waits().size(); ++i) {
        REQUIRE(prefix.selector_waits()[i] == whole.selector_waits()[i]);
    }
}

/// Every output loopspy makes from a profile, concatenated.
std::string all_outputs(const Profile& p) {
    LoopAnalysisOptions lo;
    lo.threshold = milliseconds(20);
    LoopAnalysis analysis = analyze_loops(p, lo);
    std::string out;
    for (FlameMode m : {FlameMode::Cpu, FlameMode::Busy, FlameMode::Wall}) {
        out += render_collapsed(mode_stacks(p, m, analysis.loop_threads));
    }
    out += render_json_report(p, analysis);
    out += render_slow_callbacks_table(p, analysis);
    return out;
}

// ---------------------------------------------------------------- a rich synthetic recording

constexpr std::int64_t kStart = 7'000'000'000'000;
constexpr Tid kLoop{4100};
constexpr Tid kWorker{4107};
constexpr Tid kNameless{4222};

/// Grows a profile in steps, each with something of every kind, so that several flushes each
/// have new strings, frames, stacks, samples, waits, thread names and loss counters to write.
struct RichRecording {
    Profile p;
    std::int64_t t = kStart;
    std::int64_t last_leave = 0;
    int step_no = 0;

    RichRecording() {
        p.info.tool_version = "0.1.0";
        p.info.command_line = "loopspy record -o x.lspy -- python3 app.py --ünï 'quoted'";
        p.info.pid = Pid{4100};
        p.info.target_command = "python3 app.py --flag=😀";
        p.info.python = PythonVersion{0x030C01F0};
        p.info.python_binary = "/usr/bin/python3.12";
        p.info.kernel = "Linux 6.18.0";
        p.info.rate_hz = 1000;
        p.info.start = Nanoseconds{kStart};
        p.set_thread_name(kLoop, "MainThread");
    }

    std::vector<FrameId> loop_prefix() {
        return {p.intern_frame("<module>", "app.py", 90, 0),
                p.intern_frame("run", "/usr/lib/python3.12/asyncio/runners.py", 194, 0),
                p.intern_frame("BaseEventLoop.run_forever", "/usr/lib/python3.12/asyncio/base_events.py", 638, 0),
                p.intern_frame("BaseEventLoop._run_once", "/usr/lib/python3.12/asyncio/base_events.py", 1987, 0),
                p.intern_frame("Handle._run", "/usr/lib/python3.12/asyncio/events.py", 84, 0)};
    }

    void sample(Tid tid, StackId stack, std::int64_t dt, SampleKind kind = SampleKind::OnCpu, std::int64_t weight = 1'000'000,
                std::uint32_t flags = 0, std::uint32_t off_flags = 0, std::int32_t sys = kNoSyscall) {
        t += dt;
        SampleRecord s;
        s.tid = tid;
        s.time = Nanoseconds{t};
        s.weight = Nanoseconds{weight};
        s.stack = stack;
        s.kind = kind;
        s.flags = flags;
        s.off_flags = off_flags;
        s.syscall = sys;
        p.add_sample(s);
    }

    void wait(Tid tid, std::int64_t busy, std::int64_t idle, std::uint32_t folded = 0) {
        SelectorWait w;
        w.tid = tid;
        w.syscall = 232;
        w.previous_leave = Nanoseconds{last_leave};
        w.enter = Nanoseconds{t + busy};
        w.leave = Nanoseconds{t + busy + idle};
        w.folded_waits = folded;
        w.folded_wait_time = Nanoseconds{folded * 40'000};
        w.folded_busy_time = Nanoseconds{folded * 30'000};
        p.add_selector_wait(w);
        t = w.leave.value;
        last_leave = t;
    }

    void step() {
        int k = ++step_no;
        auto base = loop_prefix();
        // New strings (unicode, invalid UTF-8, separators, control characters) in new frames.
        auto cb = base;
        cb.push_back(p.intern_frame("handler_" + std::to_string(k) + "_naïve_日本語", "/srv/app/h" + std::to_string(k) + ".py",
                                    10 * k, kFrameCoroutine));
        cb.push_back(p.intern_frame("bad\xff\xfe utf8;semi\ncolon", "x.py", -1, 0));
        StackId s1 = p.intern_stack(cb);
        cb.push_back(p.intern_frame("time.sleep", "", 0, 0));
        StackId s2 = p.intern_stack(cb);
        std::vector<FrameId> special = {p.intern_frame("<truncated>", "", 0, kFrameSpecial),
                                        p.intern_frame("<unknown>", "", 0, kFrameSpecial)};
        StackId s3 = p.intern_stack(special);
        StackId empty = p.intern_stack(std::vector<FrameId>{});
        (void)p.intern_string("a string no frame uses " + std::to_string(k));
        (void)p.intern_string("");

        // A busy period: on-CPU samples, one blocking call, a preemption; a slow one every other step.
        int n = k % 2 ? 40 : 5;
        for (int i = 0; i < n; ++i) sample(kLoop, i % 7 ? s1 : s2, 1'000'000 + (i * 37 % 11) * 1000 - 5000);
        // Tasks: samples carry their coroutine (some none), and a snapshot of the tasks follows.
        if (k != 2) {
            for (std::size_t i = p.samples().size() - static_cast<std::size_t>(n); i < p.samples().size(); ++i) {
                if (i % 5) p.set_sample_coro(i, 0x7f0000001000ull + 0x100 * static_cast<std::uint64_t>(k) - (i % 3) * 0x40);
            }
            TaskId root = p.intern_task({0x7f0000900000, 0x7f0000901000, p.intern_string("root"), p.intern_string("main")});
            TaskId worker = p.intern_task({0x7f0000a00000 + 0x100ull * static_cast<std::uint64_t>(k),
                                           0x7f0000001000ull + 0x100 * static_cast<std::uint64_t>(k),
                                           p.intern_string("worker-" + std::to_string(k) + " 日本"),
                                           p.intern_string("handler_" + std::to_string(k))});
            std::vector<FrameId> chain = {p.intern_frame("main", "app.py", 12, kFrameCoroutine),
                                          p.intern_frame("<awaiting _GatheringFuture>", "", 0, kFrameSpecial)};
            TaskSnapshot snap;
            snap.time = Nanoseconds{t - 1'000'000};
            if (k > 1) snap.removed.push_back(worker - 1);
            snap.changed.push_back({root, TaskState::Suspended, p.intern_stack(chain), {}});
            snap.changed.push_back({worker, k % 2 ? TaskState::Running : TaskState::Done, empty, {root}});
            p.add_task_snapshot(std::move(snap));
        }
        sample(kLoop, s2, 200'000, SampleKind::OffCpu, 3'000'000 + k, 0, 0, 230);
        sample(kLoop, s1, 100'000, SampleKind::OffCpu, 120'000, 0, kOffPreempted, kNoSyscall);
        // A wait for the GIL, held by the worker (1.5), every other step.
        if (k % 2) {
            sample(kLoop, s1, 10'000, SampleKind::OffCpu, 4'000'000, 0, kOffGil, 202);
            p.set_sample_gil_holder(p.samples_dropped() + p.samples().size() - 1, kWorker);
        }
        sample(kLoop, s3, 3'100'000, SampleKind::OnCpu, 1'000'000, kSampleTruncated | kSampleUnnamed);
        sample(kLoop, empty, 900'000, SampleKind::OnCpu, 1'000'000, kSamplePartial);
        sample(kLoop, s1, 1'000'000, SampleKind::OnCpu, 333'333);  // a weight other than the period
        wait(kLoop, 250'000, 5'000'000 + k * 1000, k % 3);
        // The worker, interleaved, with odd values.
        sample(kWorker, s1, -400'000, SampleKind::OnCpu, 1'000'000, 0x80000000u);
        sample(kWorker, s2, 10, SampleKind::OffCpu, 0, 0, 2u | kOffPreempted | 0x40000000u, -7);
        sample(kNameless, s1, 1, SampleKind::OffCpu, std::numeric_limits<std::int64_t>::max() / 4, 0, 0,
               std::numeric_limits<std::int32_t>::max());
        t += 2'000'000;
        wait(kLoop, 100'000, 1'000'000);

        // Names appear and change; loss counters move.
        if (k == 2) p.set_thread_name(kWorker, "asyncio_0 🧵");
        if (k == 3) p.set_thread_name(kWorker, "renamed worker");
        if (k == 4) p.set_thread_name(Tid{-5}, "");  // a name of a thread with no samples, empty
        p.lost.no_thread_state += k % 2;
        if (k == 3) p.lost.selector = 12;
    }

    void end() {
        p.info.end = Nanoseconds{t + 1'000'000};
        p.lost.ringbuf_full = 3;
        p.lost.read_failed = 1;
        p.lost.off_cpu = 2;
    }
};

/// Writes `rec` to `path` with a flush after each of `steps` steps (one flush with nothing new).
std::uint64_t write_rich(RichRecording& rec, const std::string& path, int steps, bool finish = true) {
    auto w = RecordingWriter::create(path);
    REQUIRE(w.ok());
    for (int i = 0; i < steps; ++i) {
        rec.step();
        REQUIRE((*w)->flush(rec.p).ok());
        if (i == 1) REQUIRE((*w)->flush(rec.p).ok());  // nothing new: writes nothing
    }
    if (finish) {
        rec.end();
        auto f = (*w)->finish(rec.p, "target exited");
        REQUIRE(f.ok());
    }
    return (*w)->bytes_written();
}

// ---------------------------------------------------------------- a steady workload for size

/// 60 s at 1 kHz of an event-loop thread that is busy most of the time in ~50 distinct stacks
/// (a Zipf-like mix, several samples in a row per callback), ~100 loop iterations a second, a
/// few blocking calls and preemptions a second, and a worker thread busy 10% of the time.
/// Timer jitter of a few microseconds, as perf's cpu-clock gives.
struct SteadyWorkload {
    Profile p;
    std::mt19937_64 rng{20261122};
    std::vector<StackId> loop_stacks, worker_stacks;
    std::vector<double> loop_weights;
    std::int64_t t = 1'000'000'000'000;
    std::int64_t worker_t = t;
    std::int64_t last_leave = 0;
    static constexpr std::int64_t kPeriod = 1'000'000;

    SteadyWorkload() {
        p.info.tool_version = "0.1.0";
        p.info.pid = Pid{777};
        p.info.python = PythonVersion{0x030C01F0};
        p.info.rate_hz = 1000;
        p.info.start = Nanoseconds{t};
        p.set_thread_name(Tid{777}, "MainThread");
        p.set_thread_name(Tid{790}, "asyncio_0");
        std::vector<FrameId> base = {
            p.intern_frame("<module>", "/srv/app/main.py", 120, 0),
            p.intern_frame("run", "/usr/lib/python3.12/asyncio/runners.py", 194, 0),
            p.intern_frame("Runner.run", "/usr/lib/python3.12/asyncio/runners.py", 118, 0),
            p.intern_frame("BaseEventLoop.run_until_complete", "/usr/lib/python3.12/asyncio/base_events.py", 671, 0),
            p.intern_frame("BaseEventLoop.run_forever", "/usr/lib/python3.12/asyncio/base_events.py", 638, 0),
            p.intern_frame("BaseEventLoop._run_once", "/usr/lib/python3.12/asyncio/base_events.py", 1987, 0),
            p.intern_frame("Handle._run", "/usr/lib/python3.12/asyncio/events.py", 84, 0)};
        std::vector<std::string> handlers = {"handle_request", "parse_body", "render", "query_db", "serialize",
                                             "auth_check", "compress", "log_access"};
        std::vector<std::string> leaves = {"json.dumps", "re.match", "hashlib.sha256", "dict.get", "str.join",
                                           "zlib.compress", "list.sort"};
        for (int i = 0; loop_stacks.size() < 50; ++i) {
            auto f = base;
            const std::string& h = handlers[i % handlers.size()];
            f.push_back(p.intern_frame(h, "/srv/app/handlers.py", 20 + 7 * (i % handlers.size()), kFrameCoroutine));
            if (i % 3) f.push_back(p.intern_frame(h + ".<locals>.step", "/srv/app/handlers.py", 40 + i % 5, 0));
            f.push_back(p.intern_frame(leaves[i % leaves.size()], "/srv/app/util.py", 100 + i, 0));
            loop_stacks.push_back(p.intern_stack(f));
            loop_weights.push_back(1.0 / (1 + i));
        }
        for (int i = 0; i < 5; ++i) {
            std::vector<FrameId> f = {p.intern_frame("Thread._bootstrap", "/usr/lib/python3.12/threading.py", 1030, 0),
                                      p.intern_frame("_worker", "/usr/lib/python3.12/concurrent/futures/thread.py", 89, 0),
                                      p.intern_frame("blocking_io_" + std::to_string(i), "/srv/app/io.py", 10 + i, 0)};
            worker_stacks.push_back(p.intern_stack(f));
        }
    }

    std::int64_t jitter() {
        std::normal_distribution<double> d(0, 2500);
        std::int64_t j = static_cast<std::int64_t>(d(rng));
        if (std::uniform_real_distribution<double>(0, 1)(rng) < 0.01) j += 40'000;  // an occasional late tick
        return j;
    }
    double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng); }
    std::int64_t exponential(double mean_ns) {
        return static_cast<std::int64_t>(std::exponential_distribution<double>(1.0 / mean_ns)(rng));
    }

    void on_cpu(Tid tid, std::int64_t when, StackId stack) {
        SampleRecord s;
        s.tid = tid;
        s.time = Nanoseconds{when};
        s.weight = Nanoseconds{kPeriod};
        s.stack = stack;
        p.add_sample(s);
    }

    /// One second of the loop thread, then the worker's events of that second.
    void second() {
        std::int64_t until = t + 1'000'000'000;
        std::discrete_distribution<std::size_t> pick(loop_weights.begin(), loop_weights.end());
        while (t < until) {
            // A busy period: one or more callbacks.
            std::int64_t busy = uniform() < 0.03 ? 20'000'000 + exponential(60'000'000) : exponential(8'000'000);
            std::int64_t busy_end = t + busy;
            std::int64_t tick = (t / kPeriod + 1) * kPeriod;
            StackId stack = loop_stacks[pick(rng)];
            while (tick < busy_end) {
                if (uniform() < 0.15) stack = loop_stacks[pick(rng)];
                if (uniform() < 0.004) {  // a blocking call
                    std::int64_t d = exponential(2'000'000);
                    SampleRecord s;
                    s.tid = Tid{777};
                    s.kind = SampleKind::OffCpu;
                    s.time = Nanoseconds{tick - 300'000};
                    s.weight = Nanoseconds{d};
                    s.stack = stack;
                    s.syscall = uniform() < 0.5 ? 0 : 230;
                    p.add_sample(s);
                    tick += (d / kPeriod + 1) * kPeriod;
                    busy_end += d;
                    continue;
                }
                if (uniform() < 0.01) {  // preempted
                    SampleRecord s;
                    s.tid = Tid{777};
                    s.kind = SampleKind::OffCpu;
                    s.time = Nanoseconds{tick - 500'000};
                    s.weight = Nanoseconds{20'000 + exponential(200'000)};
                    s.stack = stack;
                    s.off_flags = kOffPreempted;
                    p.add_sample(s);
                }
                on_cpu(Tid{777}, tick + jitter(), stack);
                tick += kPeriod;
            }
            t = busy_end;
            // The selector wait; short waits after short busy periods before it are folded into
            // it, as the kernel side does (previous_leave is then the last folded wait's return).
            SelectorWait w;
            w.tid = Tid{777};
            w.syscall = 232;
            if (uniform() < 0.2 && last_leave) {
                w.folded_waits = 1 + static_cast<std::uint32_t>(uniform() * 5);
                w.folded_wait_time = Nanoseconds{w.folded_waits * exponential(100'000)};
                w.folded_busy_time = Nanoseconds{w.folded_waits * exponential(200'000)};
                t += w.folded_wait_time.value + w.folded_busy_time.value;
            }
            w.previous_leave = Nanoseconds{last_leave ? last_leave + w.folded_wait_time.value + w.folded_busy_time.value : 0};
            w.enter = Nanoseconds{t};
            w.leave = Nanoseconds{t + 20'000 + exponential(600'000)};
            p.add_selector_wait(w);
            last_leave = t = w.leave.value;
        }
        // The worker: 10% busy in runs of ~10 ms.
        while (worker_t < until) {
            std::int64_t run = exponential(10'000'000);
            std::int64_t tick = (worker_t / kPeriod + 1) * kPeriod;
            StackId stack = worker_stacks[static_cast<std::size_t>(uniform() * worker_stacks.size())];
            for (; tick < worker_t + run; tick += kPeriod) on_cpu(Tid{790}, tick + jitter(), stack);
            worker_t += run + exponential(90'000'000);
        }
    }
};

}  // namespace

// ---------------------------------------------------------------- round trips

TEST_CASE("recording format: a rich profile written in several flushes reads back exactly") {
    TempFile f("rich.lspy");
    RichRecording rec;
    std::uint64_t written = write_rich(rec, f.path, 5);
    auto bytes = slurp(f.path);
    CHECK(bytes.size() == written);

    auto r = read_recording(f.path);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    CHECK(r->complete);
    CHECK(r->ending == "target exited");
    CHECK(r->warning.empty());
    CHECK(r->bytes_total == bytes.size());
    CHECK(r->bytes_unread == 0);
    CHECK(r->chunks > 20);
    check_same(r->profile, rec.p);
    // Outputs from the replayed profile are byte-identical to those from the live one.
    CHECK(all_outputs(r->profile) == all_outputs(rec.p));
    CHECK(!all_outputs(rec.p).empty());

    // The same, uncompressed: a reader takes either.
    auto plain = read_text(uncompressed(text_of(bytes)));
    REQUIRE(plain.ok());
    check_same(plain->profile, rec.p);
}

TEST_CASE("recording format: the processes of a multi-process recording, their threads and tasks read back") {
    // A master and two forked workers: the workers' tasks sit at the same addresses.
    Profile p;
    p.info.pid = Pid{100};
    p.info.rate_hz = 1000;
    p.info.start = Nanoseconds{kStart};
    p.set_process({Pid{100}, Pid{0}, "gunicorn: master", PythonVersion{0x030B02F0}, "/usr/bin/python3.11"});
    p.set_process({Pid{101}, Pid{100}, "gunicorn: worker", PythonVersion{0x030B02F0}, "/usr/bin/python3.11"});
    p.set_process({Pid{102}, Pid{100}, "gunicorn: worker", PythonVersion{0x030B02F0}, "/usr/bin/python3.11"});
    for (int pid : {100, 101, 102}) p.set_thread_process(Tid{pid}, Pid{pid});
    p.set_thread_process(Tid{103}, Pid{102});
    const StackId stack = p.intern_stack(std::vector<FrameId>{p.intern_frame("handler", "app.py", 3, kFrameCoroutine)});
    const StringId name = p.intern_string("Task-1"), coro = p.intern_string("handler");
    TaskId a = p.intern_task({0x7f00001000, 0x7f00002000, name, coro, Pid{101}});
    TaskId b = p.intern_task({0x7f00001000, 0x7f00002000, name, coro, Pid{102}});
    CHECK(a != b);  // the same addresses in two processes are two tasks
    for (int pid : {101, 102}) {
        p.add_sample({Tid{pid}, Nanoseconds{kStart + pid}, Nanoseconds{1'000'000}, stack});
        TaskSnapshot snap;
        snap.time = Nanoseconds{kStart + 1000 + pid};
        snap.pid = Pid{pid};
        snap.changed.push_back({pid == 101 ? a : b, TaskState::Running, 0, {}});
        p.add_task_snapshot(std::move(snap));
    }
    TempFile f("processes.lspy");
    auto w = RecordingWriter::create(f.path);
    REQUIRE(w.ok());
    REQUIRE((*w)->flush(p).ok());
    // A worker restarted under a reused pid, and a thread that moved, are written again.
    p.set_process({Pid{102}, Pid{100}, "gunicorn: worker (new)", PythonVersion{0x030B02F0}, "/usr/bin/python3.11"});
    p.set_thread_process(Tid{103}, Pid{101});
    REQUIRE((*w)->finish(p, "signal").ok());
    auto r = read_recording(f.path);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    check_same(r->profile, p);
    CHECK(r->profile.processes() == p.processes());
    CHECK(r->profile.thread_processes() == p.thread_processes());
    CHECK(r->profile.processes().at(Pid{102}).command == "gunicorn: worker (new)");
    CHECK(r->profile.process_of(Tid{103}) == Pid{101});
    CHECK(r->profile.process_of(Tid{999}) == Pid{100});  // not recorded: the target's
    CHECK(r->profile.multi_process());
    CHECK(r->profile.process_label(Pid{101}) == "process 101 gunicorn: worker");
}

TEST_CASE("recording format: a recorder under task churn holds only the tasks since its last flush, and the file has them all") {
    // 3,000 short tasks, flushed and let go of every 100, their snapshots beside them; one in
    // each hundred reuses the address, coroutine and name of one gone before (a task of its own).
    Profile p;
    p.info.pid = Pid{100};
    p.info.rate_hz = 1000;
    p.info.start = Nanoseconds{kStart};
    TempFile f("churn.lspy");
    auto w = RecordingWriter::create(f.path);
    REQUIRE(w.ok());
    std::vector<std::string> names;
    for (int i = 0; i < 3000; ++i) {
        const StackId stack = p.intern_stack(std::vector<FrameId>{p.intern_frame("handler", "app.py", 3, kFrameCoroutine)});
        const bool reused = i % 100 == 50;
        const std::string name = reused ? "worker" : "Task-" + std::to_string(i);
        const std::uint64_t addr = reused ? 0x7f0000f000 : 0x7f00001000 + 0x100 * static_cast<std::uint64_t>(i);
        TaskId id = p.intern_task({addr, addr + 0x80, p.intern_task_string(name), p.intern_string("handler"), Pid{100}});
        CHECK(id == static_cast<TaskId>(i));
        names.push_back(name);
        p.add_sample({Tid{100}, Nanoseconds{kStart + i * 1000}, Nanoseconds{1'000'000}, stack});
        TaskSnapshot snap;
        snap.time = Nanoseconds{kStart + i * 1000 + 500};
        snap.pid = Pid{100};
        snap.changed.push_back({id, TaskState::Running, 0, {}});
        if (i > 0) snap.removed.push_back(id - 1);
        p.add_task_snapshot(std::move(snap));
        if (i % 100 == 99) {
            REQUIRE((*w)->flush(p).ok());
            p.drop_events();
            CHECK(p.tasks().empty());
            // The code's strings stay known (the same ids), the tasks' names are gone.
            CHECK(p.string(p.frame(0).name) == "handler");
            CHECK(p.intern_string("app.py") == p.frame(0).file);
        }
    }
    REQUIRE((*w)->finish(p, "exited").ok());
    CHECK(p.frame_count() == 1);
    auto r = read_recording(f.path);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    CHECK(r->warning.empty());
    const Profile& back = r->profile;
    REQUIRE(back.task_count() == 3000);
    for (std::size_t i = 0; i < names.size(); ++i) CHECK(back.string(back.tasks()[i].name) == names[i]);
    CHECK(back.task_snapshots().size() == 3000);
    CHECK(back.samples().size() == 3000);
    CHECK(back.frame_count() == 1);
    // "worker" is written once per flush that holds one: 30 times in 30 flushes.
    std::size_t workers = 0;
    for (std::size_t i = 0; i < back.string_count(); ++i) workers += back.string(static_cast<StringId>(i)) == "worker";
    CHECK(workers == 30);
}

TEST_CASE("recording format: a profile with nothing in it, and one finished without any flush") {
    TempFile f("empty.lspy");
    Profile p;
    {
        auto w = RecordingWriter::create(f.path);
        REQUIRE(w.ok());
        REQUIRE((*w)->finish(p, "").ok());
        CHECK((*w)->flush(p).error().kind == ErrorKind::Internal);  // after finish
    }
    auto r = read_recording(f.path);
    REQUIRE(r.ok());
    CHECK(r->complete);
    CHECK(r->warning.empty());
    check_same(r->profile, p);

    RichRecording rec;
    for (int i = 0; i < 3; ++i) rec.step();
    rec.end();
    {
        auto w = RecordingWriter::create(f.path);
        REQUIRE(w.ok());
        REQUIRE((*w)->finish(rec.p, "signal").ok());
    }
    r = read_recording(f.path);
    REQUIRE(r.ok());
    CHECK(r->ending == "signal");
    check_same(r->profile, rec.p);
}

TEST_CASE("recording format: metadata that changes after the first flush is written again") {
    TempFile f("meta.lspy");
    RichRecording rec;
    auto w = RecordingWriter::create(f.path);
    REQUIRE(w.ok());
    rec.p.info.start = Nanoseconds{};
    REQUIRE((*w)->flush(rec.p).ok());
    rec.p.info.start = Nanoseconds{kStart};
    rec.step();
    REQUIRE((*w)->flush(rec.p).ok());
    rec.end();
    REQUIRE((*w)->finish(rec.p, "duration").ok());
    auto r = read_recording(f.path);
    REQUIRE(r.ok());
    check_same(r->profile, rec.p);
}

TEST_CASE("recording format: a recording that was never finished replays as cut short") {
    TempFile f("unfinished.lspy");
    RichRecording rec;
    write_rich(rec, f.path, 3, /*finish=*/false);
    auto r = read_recording(f.path);
    REQUIRE(r.ok());
    CHECK_FALSE(r->complete);
    CHECK(r->bytes_unread == 0);
    CHECK(r->warning.find("recording cut short: it has no end record") == 0);
    CHECK(r->warning.find("; it replays up to ") != std::string::npos);
    CHECK(r->profile.samples() == rec.p.samples());
    // The end is the last instant the data covers.
    CHECK(r->profile.info.end.value > kStart);
}

// ---------------------------------------------------------------- writer errors

TEST_CASE("recording format: the writer reports failures clearly") {
    auto w = RecordingWriter::create("/nonexistent-dir/x.lspy");
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().kind == ErrorKind::Io);
    CHECK(w.error().message.find("cannot create recording /nonexistent-dir/x.lspy: ") == 0);

    // A device is not a recording's place: it is read back for the outputs.
    auto full = RecordingWriter::create("/dev/full");
    REQUIRE_FALSE(full.ok());
    CHECK(full.error().message == "cannot write the recording to /dev/full: a recording is a regular file (the "
                                  "outputs are read back from it)");
}

// ---------------------------------------------------------------- cut and damaged files

TEST_CASE("recording format: a file cut at any byte reads a prefix, with a warning, or fails cleanly") {
    TempFile f("cut.lspy");
    RichRecording rec;
    write_rich(rec, f.path, 4);
    std::string file = text_of(slurp(f.path));
    auto chunks = chunks_of(file);
    REQUIRE(!chunks.empty());
    // The end of the first chunk that carries samples or selector waits.
    std::size_t first_data_end = 0;
    for (const auto& c : chunks) {
        if (c.type == rf::kChunkSamples || c.type == rf::kChunkSelectorWaits) {
            first_data_end = c.offset + c.size;
            break;
        }
    }
    REQUIRE(first_data_end > 0);
    std::size_t last_samples = 0;
    for (std::size_t cut = 0; cut <= file.size(); ++cut) {
        CAPTURE(cut);
        auto r = read_text(std::string_view(file).substr(0, cut));
        if (cut == file.size()) {
            REQUIRE(r.ok());
            CHECK(r->warning.empty());
            check_same(r->profile, rec.p);
            continue;
        }
        if (!r.ok()) {
            REQUIRE(r.error().kind == ErrorKind::BadInput);
            REQUIRE(cut < first_data_end);
            continue;
        }
        REQUIRE(cut >= rf::kFileHeaderSize);
        CHECK_FALSE(r->complete);
        CHECK(r->warning.find("recording cut short") == 0);
        CHECK(r->warning.find('\n') == std::string::npos);
        CHECK(r->bytes_total == cut);
        check_prefix(r->profile, rec.p);
        // More of the file never means fewer samples.
        REQUIRE(r->profile.samples().size() >= last_samples);
        last_samples = r->profile.samples().size();
        if (cut >= first_data_end) {
            bool at_boundary = false;
            for (const auto& c : chunks) at_boundary |= c.offset + c.size == cut;
            if (!at_boundary) {
                CHECK(r->warning.find("(an incomplete chunk) were not readable; it replays up to") != std::string::npos);
            }
        }
    }
    // A cut inside the first flush, before any samples, is an error.
    auto early = read_text(std::string_view(file).substr(0, first_data_end - 1));
    REQUIRE_FALSE(early.ok());
    CHECK(early.error().message.find("recording cut short before any samples") == 0);
}

TEST_CASE("recording format: a flipped byte anywhere is caught") {
    TempFile f("flip.lspy");
    RichRecording rec;
    write_rich(rec, f.path, 3);
    std::string file = text_of(slurp(f.path));
    for (std::size_t i = 0; i < file.size(); ++i) {
        for (unsigned char bit : {0x01, 0x80}) {
            CAPTURE(i);
            std::string damaged = file;
            damaged[i] = static_cast<char>(damaged[i] ^ bit);
            auto r = read_text(damaged);
            if (i >= 10 && i < 16) {  // the minor version and the reserved field: not checked
                REQUIRE(r.ok());
                check_same(r->profile, rec.p);
                continue;
            }
            if (!r.ok()) {
                REQUIRE(r.error().kind == ErrorKind::BadInput);
                continue;
            }
            REQUIRE_FALSE(r->warning.empty());
            CHECK(r->warning.find("recording damaged: ") == 0);
            check_prefix(r->profile, rec.p);
        }
    }
    // Damage in a body is named.
    auto chunks = chunks_of(file);
    std::string damaged = file;
    const auto& last_samples =
        *std::find_if(chunks.rbegin(), chunks.rend(), [](const ChunkView& c) { return c.type == rf::kChunkSamples; });
    damaged[last_samples.offset + rf::kChunkHeaderSize + 2] ^= 0x10;
    auto r = read_text(damaged);
    REQUIRE(r.ok());
    CHECK(r->warning.find("recording damaged: a bad checksum in the samples chunk at byte " +
                          std::to_string(last_samples.offset)) == 0);
    CHECK(r->bytes_unread == file.size() - last_samples.offset);
}

// ---------------------------------------------------------------- foreign and crafted files

TEST_CASE("recording format: files that are not recordings") {
    auto empty = read_text("");
    REQUIRE_FALSE(empty.ok());
    CHECK(empty.error().kind == ErrorKind::BadInput);
    CHECK(empty.error().message == "empty file, not a loopspy recording");

    CHECK(read_text("LOOPSPY").error().message == "not a loopspy recording");
    CHECK(read_text("thread MainThread (1);main (a.py:1) 1000\n").error().message == "not a loopspy recording");
    CHECK(read_text(std::string(rf::kMagic, 5)).error().message == "recording cut short inside its file header");

    auto future = read_text(file_header(2, 0) + chunk(77, "whatever"));
    REQUIRE_FALSE(future.ok());
    CHECK(future.error().message == "recording format 2.x is newer than this loopspy (reads 1.x)");
    CHECK_FALSE(read_text(file_header(0, 9)).ok());

    auto missing = read_recording("/nonexistent-dir/x.lspy");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().kind == ErrorKind::Io);
    TempFile f("notrec.lspy");
    { std::ofstream(f.path) << "hello"; }
    CHECK(read_recording(f.path).error().message == f.path + ": not a loopspy recording");

    // A header and nothing else (the recorder died before its first flush): an empty recording
    // is an error, not a clean replay of nothing.
    auto bare = read_text(file_header());
    REQUIRE_FALSE(bare.ok());
    CHECK(bare.error().kind == ErrorKind::BadInput);
    CHECK(bare.error().message == "empty recording: a file header and nothing recorded after it");

    // Only regular files are read, and the type is said before anything is read: a device
    // would never end, a FIFO with no writer would block.
    CHECK(read_recording("/dev/zero").error().message ==
          "/dev/zero: is a character device, not a loopspy recording (a recording is a regular file)");
    CHECK(read_recording("/tmp").error().message ==
          "/tmp: is a directory, not a loopspy recording (a recording is a regular file)");
    TempFile fifo("fifo.lspy");
    REQUIRE(::mkfifo(fifo.path.c_str(), 0600) == 0);
    CHECK(read_recording(fifo.path).error().message ==
          fifo.path + ": is a FIFO, not a loopspy recording (a recording is a regular file)");

    // Random bytes, with and without a valid header: errors or warnings, never a crash. Both
    // outcomes happen, and each is well formed.
    std::mt19937_64 rng(1);
    int read_ok = 0, refused = 0;
    for (int i = 0; i < 3000; ++i) {
        std::string s(rng() % 300, '\0');
        for (auto& c : s) c = static_cast<char>(rng());
        if (i % 2) s = file_header() + s;
        std::uint32_t type = 0;
        if (i % 4 == 1) {
            type = static_cast<std::uint32_t>(1 + rng() % 10);
            s = file_header() + chunk(type, s.substr(16), i % 8 == 1);
        }
        auto r = read_text(s);
        if (r.ok()) {
            ++read_ok;
            CHECK(r->profile.samples().size() < 300);
            // Only a well-framed end chunk makes random bytes a complete (empty) recording.
            CHECK_MESSAGE(r->warning.empty() == (type == rf::kChunkEnd), i << ": " << r->warning);
        } else {
            ++refused;
            CHECK(r.error().kind == ErrorKind::BadInput);
            CHECK_FALSE(r.error().message.empty());
        }
    }
    CHECK(read_ok > 100);
    CHECK(refused > 100);
}

TEST_CASE("recording format: a newer minor version with an unknown chunk type is read, the chunk skipped") {
    TempFile f("minor.lspy");
    RichRecording rec;
    write_rich(rec, f.path, 2);
    std::string file = text_of(slurp(f.path));
    auto chunks = chunks_of(file);
    // Minor 7; an unknown chunk after the metadata and another before END; also a known chunk
    // with fields appended after the ones this version knows (the loss counters with a ninth value).
    std::string out = file_header(1, 7);
    for (const auto& c : chunks) {
        if (c.type == rf::kChunkEnd) out += chunk(0x7000, "from the future", true);
        if (c.type == rf::kChunkLoss) {
            out += chunk(rf::kChunkLoss, uv(rec.p.lost.ringbuf_full) + uv(rec.p.lost.read_failed) +
                                             uv(rec.p.lost.no_thread_state) + uv(rec.p.lost.off_cpu) +
                                             uv(rec.p.lost.selector) + uv(rec.p.lost.undelivered) +
                                             uv(rec.p.lost.native_thread) + uv(rec.p.lost.target_cpu_ns) + uv(99));
        } else {
            out += file.substr(c.offset, c.size);
        }
        if (c.type == rf::kChunkMeta) out += chunk(0x12345678, std::string(100, 'z'), false, 0x8000);
    }
    auto r = read_text(out);
    REQUIRE(r.ok());
    CHECK(r->warning.empty());
    CHECK(r->complete);
    CHECK(r->chunks == chunks.size() + 2);
    check_same(r->profile, rec.p);

    // Bytes after END are reported, not read.
    auto trailing = read_text(file + "garbage");
    REQUIRE(trailing.ok());
    CHECK(trailing->complete);
    CHECK(trailing->bytes_unread == 7);
    CHECK(trailing->warning == "7 bytes after the end of the recording were ignored");
}

namespace {

/// A valid start: metadata, two strings, one frame, one stack, thread 0 = tid 10, and one sample.
std::string valid_start(std::uint16_t minor = kFormatMinor) {
    std::string meta = lstr("0.1.0") + lstr("cmd") + sv(1) + lstr("t") + uv(0x030C01F0) + lstr("py") + lstr("k") +
                       lstr("CLOCK_MONOTONIC") + sv(1000) + sv(5'000'000'000);
    std::string strings = uv(0) + uv(2) + uv(1) + uv(1) + "fa";
    std::string frames = uv(0) + uv(1) + sv(0) + sv(1) + sv(3) + uv(0);
    std::string stacks = uv(0) + uv(1) + uv(1) + uv(0);
    std::string threads = uv(0) + uv(1) + sv(10);
    std::string samples = uv(0) + uv(1) + sv(1'000'000) + sv(5'001'000'000) + uv(0) + uv(1) + sv(0) + uv(0);
    return file_header(kFormatMajor, minor) + chunk(rf::kChunkMeta, meta) + chunk(rf::kChunkStrings, strings) +
           chunk(rf::kChunkFrames, frames) + chunk(rf::kChunkStacks, stacks) + chunk(rf::kChunkThreads, threads) +
           chunk(rf::kChunkSamples, samples, true);
}

/// Reads start + tail; expects one sample and a "recording damaged" warning containing `what`.
void expect_damage(const std::string& tail, const std::string& what, std::uint16_t minor = kFormatMinor) {
    CAPTURE(what);
    auto t0 = std::chrono::steady_clock::now();
    auto r = read_text(valid_start(minor) + tail);
    auto elapsed = std::chrono::steady_clock::now() - t0;
    CHECK(elapsed < std::chrono::seconds(1));
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    CHECK(r->profile.samples().size() == 1);
    CHECK(r->warning.find("recording damaged: ") == 0);
    CHECK_MESSAGE(r->warning.find(what) != std::string::npos, r->warning);
}

}  // namespace

TEST_CASE("recording format: crafted chunks are damage, bounded in time and memory") {
    auto base = read_text(valid_start());
    REQUIRE_MESSAGE(base.ok(), base.error().message);
    REQUIRE(base->profile.samples().size() == 1);
    CHECK(base->profile.samples()[0].time.value == 5'001'000'000);
    CHECK(base->profile.frame(0).line == 3);

    // Lengths.
    expect_damage(chunk_header(rf::kChunkSamples, rf::kChunkZlib, 0xFFFFFFF0, 0xFFFFFFF0, 0),
                  "an absurd length in the samples chunk");
    // A sound header whose body runs past the end is a cut, not damage.
    auto r = read_text(valid_start() + chunk_header(rf::kChunkSamples, rf::kChunkZlib, 5000, 9000, 0) + "abc");
    REQUIRE(r.ok());
    CHECK(r->warning.find("recording cut short: the last 27 bytes (an incomplete chunk)") == 0);
    // A damaged header is damage.
    std::string bad_header = chunk(rf::kChunkSamples, "abc");
    bad_header[8] ^= 1;
    expect_damage(bad_header, "a damaged chunk header at byte ");
    // A zip bomb's claim: 64 MiB from a few bytes.
    expect_damage(chunk(rf::kChunkSamples, "x", true, 0, 64u << 20), "an absurd length");
    expect_damage(chunk(rf::kChunkSamples, "x", true, 0, 0xFFFFFFFF), "an absurd length");
    expect_damage(chunk(rf::kChunkSamples, "abc", false, 0, 2), "an absurd length");
    expect_damage(chunk(rf::kChunkSamples, "abc", true, 0, 2), "does not decompress");
    expect_damage(chunk(rf::kChunkSamples, "abc", false, 4), "unknown flags");

    // Counts.
    expect_damage(chunk(rf::kChunkSamples, uv(1) + uv(1ull << 60) + "xxxxxxxx"), "an absurd count of samples");
    expect_damage(chunk(rf::kChunkSamples, uv(1) + uv(1'000'000) + std::string(100, '\0')), "an absurd count of samples");
    expect_damage(chunk(rf::kChunkStrings, uv(2) + uv(1u << 30)), "an absurd count of strings");
    expect_damage(chunk(rf::kChunkStrings, uv(2) + uv(1) + uv(1u << 30) + "abc"), "a string runs past");
    expect_damage(chunk(rf::kChunkStacks, uv(1) + uv(1) + uv(1ull << 40)), "an absurd stack depth");
    expect_damage(chunk(rf::kChunkStacks, uv(1) + uv(1) + uv(3) + uv(0) + uv(0)), "an absurd stack depth");
    expect_damage(chunk(rf::kChunkStacks, uv(1) + uv(1) + uv(3) + uv(0) + uv(0) + "\x80"), "runs past the end");
    expect_damage(chunk(rf::kChunkSamples, uv(1) + uv(1) + std::string(11, '\xff') + uv(1)), "does not fit in 64 bits");

    // Duplicates and ids out of range or out of order.
    // Before 1.4 a string never repeats; from 1.4 a task's name may (the next id all the same).
    expect_damage(chunk(rf::kChunkStrings, uv(2) + uv(1) + uv(1) + "f"), "a string is repeated", 3);
    {
        auto repeated = read_text(valid_start() + chunk(rf::kChunkStrings, uv(2) + uv(1) + uv(1) + "f"));
        REQUIRE(repeated.ok());
        CHECK(repeated->warning.find("recording damaged") == std::string::npos);
        REQUIRE(repeated->profile.string_count() == 3);
        CHECK(repeated->profile.string(2) == "f");
    }
    expect_damage(chunk(rf::kChunkStrings, uv(3) + uv(1) + uv(1) + "z"), "strings out of order");
    expect_damage(chunk(rf::kChunkFrames, uv(1) + uv(1) + sv(0) + sv(1) + sv(3) + uv(0)), "a frame is repeated");
    expect_damage(chunk(rf::kChunkFrames, uv(1) + uv(1) + sv(0) + sv(7) + sv(3) + uv(0)), "a string the recording does not have");
    expect_damage(chunk(rf::kChunkFrames, uv(1) + uv(1) + sv(-1) + sv(0) + sv(3) + uv(0)), "a string the recording does not have");
    expect_damage(chunk(rf::kChunkStacks, uv(1) + uv(1) + uv(1) + uv(0)), "a stack is repeated");
    expect_damage(chunk(rf::kChunkStacks, uv(1) + uv(1) + uv(1) + uv(9)), "a frame the recording does not have");
    expect_damage(chunk(rf::kChunkThreads, uv(1) + uv(1) + sv(10)), "a thread is declared twice");
    expect_damage(chunk(rf::kChunkThreads, uv(1) + uv(1) + sv(1ll << 40)), "a thread id out of range");
    auto sample = [](std::uint64_t thread, std::uint64_t head, std::uint64_t stack) {
        return uv(1) + uv(1) + sv(1'000'000) + sv(0) + uv(thread) + uv(head) + sv(0) + uv(stack) + uv(0) + uv(0);
    };
    auto sound = read_text(valid_start() + chunk(rf::kChunkSamples, sample(0, 1, 0)));
    REQUIRE(sound.ok());
    CHECK(sound->profile.samples().size() == 2);
    CHECK(sound->warning.find("recording cut short: it has no end record") == 0);
    expect_damage(chunk(rf::kChunkSamples, sample(1, 1, 0)), "a thread the recording did not declare");
    expect_damage(chunk(rf::kChunkSamples, sample(0, 3, 0)), "a sample of unknown kind");
    expect_damage(chunk(rf::kChunkSamples, sample(0, 0x41, 0)), "a sample of unknown kind");
    expect_damage(chunk(rf::kChunkSamples, sample(0, 1, 1)), "a stack the recording does not have");
    expect_damage(chunk(rf::kChunkSamples, uv(0) + uv(1) + sv(0) + sv(0) + uv(0) + uv(1) + sv(0) + uv(0)), "samples out of order");
    expect_damage(chunk(rf::kChunkSelectorWaits, uv(0) + uv(1) + sv(0) + uv(4) + std::string(7, '\0')),
                  "a thread the recording did not declare");
    expect_damage(chunk(rf::kChunkThreadNames, uv(1) + sv(1ll << 33) + lstr("x")), "a thread id out of range");
    expect_damage(chunk(rf::kChunkMeta, lstr("0.1.0")), "runs past the end");

    // The same before any samples: an error, not a warning.
    auto before = read_text(file_header() + chunk(rf::kChunkStrings, uv(0) + uv(1) + uv(1u << 30) + "abc"));
    REQUIRE_FALSE(before.ok());
    CHECK(before.error().message.find("recording damaged before any samples: a string runs past") == 0);
}

// ---------------------------------------------------------------- size

// A synthetic loop with few selector waits (about 0.09 a sample): it bounds the encoding of
// samples and stacks. A real recorder's loop waits in its selector far more often (0.5 a sample
// in BENCHMARKS.md) and costs more; test_record_replay.py bounds a real recording.
TEST_CASE("recording format: a synthetic 1 kHz loop with few selector waits costs at most 4 bytes a sample") {
    TempFile f("steady.lspy");
    SteadyWorkload wl;
    auto w = RecordingWriter::create(f.path);
    REQUIRE(w.ok());
    for (int s = 0; s < 60; ++s) {
        wl.second();
        REQUIRE((*w)->flush(wl.p).ok());
    }
    wl.p.info.end = Nanoseconds{wl.t};
    REQUIRE((*w)->finish(wl.p, "duration").ok());
    double per_sample = static_cast<double>((*w)->bytes_written()) / static_cast<double>(wl.p.samples().size());
    MESSAGE("steady workload: " << wl.p.samples().size() << " samples, " << wl.p.selector_waits().size()
                                << " selector waits, " << (*w)->bytes_written() << " bytes, " << per_sample
                                << " bytes per sample (everything included)");
    CHECK(per_sample <= 4.0);
    const double waits_per_sample =
        static_cast<double>(wl.p.selector_waits().size()) / static_cast<double>(wl.p.samples().size());
    CHECK(waits_per_sample < 0.15);  // what the title says the bound is about
    auto r = read_recording(f.path);
    REQUIRE(r.ok());
    check_same(r->profile, wl.p);
}

// ---------------------------------------------------------------- the fuzz seed corpus

// Writes the fuzzer's seeds into LOOPSPY_FUZZ_CORPUS (scripts/fuzz.sh sets it), or a scratch
// directory; every seed must read: the whole ones completely, the cut one up to its damage.
TEST_CASE("recording format: the fuzz seed corpus reads as it should") {
    const char* env = std::getenv("LOOPSPY_FUZZ_CORPUS");
    const std::string dir = env && *env ? std::string(env) : TempFile("seeds").path;
    std::filesystem::create_directories(dir);
    struct RemoveAll {
        std::string dir;
        ~RemoveAll() { std::filesystem::remove_all(dir); }
    } cleanup{env && *env ? std::string() : dir};
    // complete: read to its end record with no warning; otherwise it must warn.
    auto put = [&](const std::string& name, const std::string& data, bool complete) {
        std::ofstream(std::filesystem::path(dir) / name, std::ios::binary) << data;
        auto r = read_text(data);
        REQUIRE_MESSAGE(r.ok(), name);
        CHECK_MESSAGE(r->profile.samples().size() > 0, name);
        CHECK_MESSAGE(r->warning.empty() == complete, name << ": " << r->warning);
    };
    TempFile f("seed.lspy");
    RichRecording rec;
    write_rich(rec, f.path, 2);
    std::string rich = text_of(slurp(f.path));
    put("rich-zlib.bin", rich, true);
    put("rich-raw.bin", uncompressed(rich), true);
    put("rich-cut.bin", rich.substr(0, rich.size() * 2 / 3), false);
    put("crafted-raw.bin",
        valid_start() + chunk(rf::kChunkSelectorWaits, uv(0) + uv(1) + sv(5) + uv(0) + std::string(7, '\x02')) +
            chunk(rf::kChunkThreadNames, uv(1) + sv(10) + lstr("Main")) +
            chunk(rf::kChunkEnd, sv(9) + lstr("duration") + std::string(5, '\0')),
        true);
    SteadyWorkload wl;
    TempFile g("seed-steady.lspy");
    {
        auto w = RecordingWriter::create(g.path);
        REQUIRE(w.ok());
        wl.second();
        wl.p.info.end = Nanoseconds{wl.t};
        REQUIRE((*w)->finish(wl.p, "duration").ok());
    }
    std::string steady = text_of(slurp(g.path));
    put("steady-1s-zlib.bin", steady, true);
    put("steady-1s-raw.bin", uncompressed(steady).substr(0, 24'000), uncompressed(steady).size() <= 24'000);
}
