#include "recording/format.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

namespace loopspy {
namespace {

using namespace recording_format;

// ---- limits (docs/recording-format.md, "Limits") ----
constexpr std::size_t kWriterBatch = 1u << 16;         // items per chunk the writer emits at most
constexpr std::size_t kWriterBatchBytes = 16u << 20;   // string bytes per chunk the writer aims at
constexpr std::uint64_t kMaxItems = 1u << 20;          // items per chunk a reader accepts
constexpr std::uint64_t kMaxStackDepth = 1u << 16;     // frames per stack a reader accepts
constexpr std::uint64_t kDeflateMaxRatio = 1040;       // deflate never expands more than ~1032:1
constexpr int kCompressionLevel = 6;

constexpr std::uint32_t kHeadKindMask = 3;        // bits 0-1: SampleKind (1 on-CPU, 2 off-CPU)
constexpr std::uint32_t kHeadWeight = 1u << 2;    // weight differs from the chunk's default
constexpr std::uint32_t kHeadFlags = 1u << 3;     // flags != 0
constexpr std::uint32_t kHeadOffFlags = 1u << 4;  // off_flags != 0
constexpr std::uint32_t kHeadSyscall = 1u << 5;   // syscall != kNoSyscall
constexpr std::uint32_t kHeadKnown = (1u << 6) - 1;

// ---- fixed-width little-endian ----
void put_le16(std::string& out, std::uint16_t v) {
    out.push_back(static_cast<char>(v & 0xff));
    out.push_back(static_cast<char>(v >> 8));
}
void put_le32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint16_t get_le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
std::uint32_t get_le32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
           (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

// ---- varints: LEB128, zig-zag for signed values; differences wrap (two's complement) ----
std::uint64_t zigzag(std::int64_t v) {
    auto u = static_cast<std::uint64_t>(v);
    return (u << 1) ^ (std::uint64_t{0} - (u >> 63));
}
std::int64_t unzigzag(std::uint64_t z) { return static_cast<std::int64_t>((z >> 1) ^ (std::uint64_t{0} - (z & 1))); }
std::int64_t wrap_sub(std::int64_t a, std::int64_t b) {
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) - static_cast<std::uint64_t>(b));
}
std::int64_t wrap_add(std::int64_t a, std::int64_t b) {
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}

struct Out {
    std::string b;
    void u(std::uint64_t v) {
        while (v >= 0x80) {
            b.push_back(static_cast<char>((v & 0x7f) | 0x80));
            v >>= 7;
        }
        b.push_back(static_cast<char>(v));
    }
    void s(std::int64_t v) { u(zigzag(v)); }
    void str(std::string_view s) {
        u(s.size());
        b.append(s);
    }
};

/// Thrown inside the reader when a chunk body does not decode; caught per chunk.
struct Damage {
    std::string what;
};

class In {
public:
    In(const std::uint8_t* p, std::size_t n) : p_(p), end_(p + n) {}
    std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }

    std::uint64_t u() {
        if (p_ != end_ && *p_ < 0x80) return *p_++;  // most values are one byte
        return u_long();
    }
    std::uint64_t u_long() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p_ == end_) throw Damage{"a value runs past the end of its chunk"};
            std::uint8_t c = *p_++;
            if (shift == 63 && c > 1) throw Damage{"a number does not fit in 64 bits"};
            v |= static_cast<std::uint64_t>(c & 0x7f) << shift;
            if (!(c & 0x80)) return v;
        }
        throw Damage{"a number does not fit in 64 bits"};
    }
    std::int64_t s() { return unzigzag(u()); }
    std::uint32_t u32(const char* what) {
        std::uint64_t v = u();
        if (v > std::numeric_limits<std::uint32_t>::max()) throw Damage{std::string(what) + " out of range"};
        return static_cast<std::uint32_t>(v);
    }
    std::int32_t i32(const char* what) {
        std::int64_t v = s();
        if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max()) {
            throw Damage{std::string(what) + " out of range"};
        }
        return static_cast<std::int32_t>(v);
    }
    /// A count of items that each take at least `min_bytes` of what is left.
    std::size_t count(std::size_t min_bytes, const char* what) {
        std::uint64_t v = u();
        if (v > kMaxItems || v * min_bytes > left()) throw Damage{std::string("an absurd count of ") + what};
        return static_cast<std::size_t>(v);
    }
    std::string_view bytes(std::size_t n, const char* what) {
        if (n > left()) throw Damage{std::string(what) + " runs past the end of its chunk"};
        std::string_view v(reinterpret_cast<const char*>(p_), n);
        p_ += n;
        return v;
    }
    std::string_view str(const char* what) {
        std::uint64_t n = u();
        if (n > left()) throw Damage{std::string(what) + " runs past the end of its chunk"};
        return bytes(static_cast<std::size_t>(n), what);
    }

private:
    const std::uint8_t* p_;
    const std::uint8_t* end_;
};

const char* chunk_name(std::uint32_t type) {
    switch (type) {
        case kChunkMeta: return "metadata";
        case kChunkStrings: return "strings";
        case kChunkFrames: return "frames";
        case kChunkStacks: return "stacks";
        case kChunkThreads: return "threads";
        case kChunkThreadNames: return "thread names";
        case kChunkSamples: return "samples";
        case kChunkSelectorWaits: return "selector waits";
        case kChunkLoss: return "loss counters";
        case kChunkEnd: return "end";
        case kChunkSampleCoros: return "sample coroutines";
        case kChunkTasks: return "tasks";
        case kChunkTaskSnapshots: return "task snapshots";
        default: return nullptr;
    }
}

std::uint32_t crc_of(const std::uint8_t* p, std::size_t n) {
    return static_cast<std::uint32_t>(crc32(0L, p, static_cast<uInt>(n)));
}

/// Appends one chunk: compressed when that makes it smaller.
Result<void> append_chunk(std::string& out, std::uint32_t type, std::string_view raw) {
    if (raw.size() > kMaxChunkRaw) {
        return make_error(ErrorKind::Internal, std::string("a ") + chunk_name(type) +
                                                   " chunk would exceed the format's 64 MiB limit");
    }
    std::string packed;
    uLongf packed_len = compressBound(static_cast<uLong>(raw.size()));
    packed.resize(packed_len);
    int rc = compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_len,
                       reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), kCompressionLevel);
    if (rc != Z_OK) return make_error(ErrorKind::Internal, "zlib compression failed");
    std::uint32_t flags = 0;
    std::string_view body = raw;
    if (packed_len < raw.size()) {
        packed.resize(packed_len);
        body = packed;
        flags = kChunkZlib;
    }
    std::size_t at = out.size();
    put_le32(out, type);
    put_le32(out, flags);
    put_le32(out, static_cast<std::uint32_t>(body.size()));
    put_le32(out, static_cast<std::uint32_t>(raw.size()));
    put_le32(out, crc_of(reinterpret_cast<const std::uint8_t*>(body.data()), body.size()));
    put_le32(out, crc_of(reinterpret_cast<const std::uint8_t*>(out.data() + at), 20));
    out.append(body);
    return {};
}

void put_loss(Out& o, const LossCounters& l) {
    o.u(l.ringbuf_full);
    o.u(l.read_failed);
    o.u(l.no_thread_state);
    o.u(l.off_cpu);
    o.u(l.selector);
}

LossCounters get_loss(In& in) {
    LossCounters l;
    l.ringbuf_full = in.u();
    l.read_failed = in.u();
    l.no_thread_state = in.u();
    l.off_cpu = in.u();
    l.selector = in.u();
    return l;
}

std::string seconds_text(Nanoseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f", d.seconds());
    return buf;
}

}  // namespace

// ================================ writer ================================

RecordingWriter::RecordingWriter(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

RecordingWriter::~RecordingWriter() = default;

std::uint64_t RecordingWriter::bytes_written() const { return bytes_; }

Result<std::unique_ptr<RecordingWriter>> RecordingWriter::create(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) {
        return make_error(ErrorKind::Io, "cannot create recording " + path + ": " + std::strerror(errno));
    }
    std::unique_ptr<RecordingWriter> w(new RecordingWriter(std::move(fd), path));
    std::string header(kMagic, sizeof(kMagic));
    put_le16(header, kFormatMajor);
    put_le16(header, kFormatMinor);
    put_le32(header, 0);  // reserved
    LOOPSPY_CHECK(w->write_all(header));
    return w;
}

Result<void> RecordingWriter::write_all(const std::string& bytes) {
    if (int err = write_fully(fd_.get(), bytes, &bytes_)) {
        failure_ = make_error(ErrorKind::Io, "cannot write recording " + path_ + ": " + std::strerror(err));
        return *failure_;
    }
    return {};
}

Result<void> RecordingWriter::encode_new(const Profile& p, std::string& out) {
    // ---- metadata: on the first call, and again whenever it changed (the end goes in END) ----
    ProfileInfo info = p.info;
    info.end = Nanoseconds{};
    if (!info_written_ || !(info == info_)) {
        Out o;
        o.str(info.tool_version);
        o.str(info.command_line);
        o.s(info.pid.value);
        o.str(info.target_command);
        o.u(info.python.hex);
        o.str(info.python_binary);
        o.str(info.kernel);
        o.str("CLOCK_MONOTONIC");
        o.s(info.rate_hz);
        o.s(info.start.value);
        LOOPSPY_CHECK(append_chunk(out, kChunkMeta, o.b));
        info_ = info;
        info_written_ = true;
    }

    // ---- strings: first id, count, every length, then every string's bytes ----
    while (strings_ < p.string_count()) {
        std::size_t end = strings_, bytes = 0;
        while (end < p.string_count() && end - strings_ < kWriterBatch && (end == strings_ || bytes < kWriterBatchBytes)) {
            bytes += p.string(static_cast<StringId>(end)).size();
            ++end;
        }
        Out o;
        o.u(strings_);
        o.u(end - strings_);
        for (std::size_t i = strings_; i < end; ++i) o.u(p.string(static_cast<StringId>(i)).size());
        for (std::size_t i = strings_; i < end; ++i) o.b.append(p.string(static_cast<StringId>(i)));
        LOOPSPY_CHECK(append_chunk(out, kChunkStrings, o.b));
        strings_ = end;
    }

    // ---- frames: first id, count, then (name delta, file delta, line, flags) each ----
    while (frames_ < p.frame_count()) {
        std::size_t end = std::min(p.frame_count(), frames_ + kWriterBatch);
        Out o;
        o.u(frames_);
        o.u(end - frames_);
        std::int64_t name = 0, file = 0;
        for (std::size_t i = frames_; i < end; ++i) {
            const FrameRecord& f = p.frame(static_cast<FrameId>(i));
            o.s(static_cast<std::int64_t>(f.name) - name);
            o.s(static_cast<std::int64_t>(f.file) - file);
            o.s(f.line);
            o.u(f.flags);
            name = f.name;
            file = f.file;
        }
        LOOPSPY_CHECK(append_chunk(out, kChunkFrames, o.b));
        frames_ = end;
    }

    // ---- stacks: first id, count, then (depth, frame ids outermost first) each ----
    while (stacks_ < p.stack_count()) {
        std::size_t end = stacks_, frames = 0;
        while (end < p.stack_count() && end - stacks_ < kWriterBatch && (end == stacks_ || frames < kWriterBatch * 16)) {
            frames += p.stack(static_cast<StackId>(end)).size();
            ++end;
        }
        Out o;
        o.u(stacks_);
        o.u(end - stacks_);
        for (std::size_t i = stacks_; i < end; ++i) {
            auto frames_of = p.stack(static_cast<StackId>(i));
            if (frames_of.size() > kMaxStackDepth) {
                return make_error(ErrorKind::Internal, "a stack deeper than the recording format allows");
            }
            o.u(frames_of.size());
            for (FrameId f : frames_of) o.u(f);
        }
        LOOPSPY_CHECK(append_chunk(out, kChunkStacks, o.b));
        stacks_ = end;
    }

    // ---- threads: every tid that new samples or waits use gets the next index ----
    // Ids are absolute; the profile may have let go of events already written (drop_events).
    const auto& held_samples = p.samples();
    const auto& held_waits = p.selector_waits();
    const std::size_t sbase = p.samples_dropped(), wbase = p.waits_dropped();
    if (samples_ < sbase || waits_ < wbase) {
        return make_error(ErrorKind::Internal, "events were dropped before they were written");
    }
    auto samples = [&](std::size_t i) -> const SampleRecord& { return held_samples[i - sbase]; };
    auto waits = [&](std::size_t i) -> const SelectorWait& { return held_waits[i - wbase]; };
    const std::size_t samples_end = sbase + held_samples.size(), waits_end = wbase + held_waits.size();
    std::vector<Tid> new_tids;
    auto see = [&](Tid t) {
        if (thread_index_.emplace(t, static_cast<std::uint32_t>(thread_index_.size())).second) new_tids.push_back(t);
    };
    for (std::size_t i = samples_; i < samples_end; ++i) see(samples(i).tid);
    for (std::size_t i = waits_; i < waits_end; ++i) see(waits(i).tid);
    for (std::size_t done = 0; done < new_tids.size();) {
        std::size_t end = std::min(new_tids.size(), done + kWriterBatch);
        Out o;
        o.u(thread_index_.size() - new_tids.size() + done);
        o.u(end - done);
        std::int64_t prev = 0;
        for (std::size_t i = done; i < end; ++i) {
            o.s(new_tids[i].value - prev);
            prev = new_tids[i].value;
        }
        LOOPSPY_CHECK(append_chunk(out, kChunkThreads, o.b));
        done = end;
    }

    // ---- thread names that are new or changed ----
    {
        std::vector<std::pair<Tid, const std::string*>> changed;
        for (const auto& [tid, name] : p.threads()) {
            auto it = names_.find(tid);
            if (it == names_.end() || it->second != name) changed.emplace_back(tid, &name);
        }
        for (std::size_t done = 0; done < changed.size();) {
            std::size_t end = done, bytes = 0;
            while (end < changed.size() && end - done < kWriterBatch && (end == done || bytes < kWriterBatchBytes)) {
                bytes += changed[end].second->size();
                ++end;
            }
            Out o;
            o.u(end - done);
            for (std::size_t i = done; i < end; ++i) {
                o.s(changed[i].first.value);
                o.str(*changed[i].second);
                names_[changed[i].first] = *changed[i].second;
            }
            LOOPSPY_CHECK(append_chunk(out, kChunkThreadNames, o.b));
            done = end;
        }
    }

    // ---- samples: columns; times per thread against a prediction (previous time + weight) ----
    const std::int64_t default_weight = p.info.rate_hz > 0 ? 1'000'000'000 / p.info.rate_hz : 0;
    while (samples_ < samples_end) {
        std::size_t end = std::min(samples_end, samples_ + kWriterBatch);
        Out hdr, thr, head, time, stack, weight, flags, off_flags, syscall;
        std::int64_t base = samples(samples_).time.value;
        hdr.u(samples_);
        hdr.u(end - samples_);
        hdr.s(default_weight);
        hdr.s(base);
        std::unordered_map<std::uint32_t, std::int64_t> predicted;
        for (std::size_t i = samples_; i < end; ++i) {
            const SampleRecord& s = samples(i);
            auto kind = static_cast<std::uint32_t>(s.kind);
            if (kind != static_cast<std::uint32_t>(SampleKind::OnCpu) &&
                kind != static_cast<std::uint32_t>(SampleKind::OffCpu)) {
                return make_error(ErrorKind::Internal, "a sample of unknown kind cannot be recorded");
            }
            if (s.stack >= p.stack_count()) {
                return make_error(ErrorKind::Internal, "a sample names a stack the profile does not have");
            }
            std::uint32_t t = thread_index_.at(s.tid);
            std::uint32_t h = kind;
            if (s.weight.value != default_weight) h |= kHeadWeight;
            if (s.flags) h |= kHeadFlags;
            if (s.off_flags) h |= kHeadOffFlags;
            if (s.syscall != kNoSyscall) h |= kHeadSyscall;
            thr.u(t);
            head.u(h);
            auto [it, fresh] = predicted.try_emplace(t, base);
            time.s(wrap_sub(s.time.value, it->second));
            it->second = wrap_add(s.time.value, s.weight.value);
            stack.u(s.stack);
            if (h & kHeadWeight) weight.s(s.weight.value);
            if (h & kHeadFlags) flags.u(s.flags);
            if (h & kHeadOffFlags) off_flags.u(s.off_flags);
            if (h & kHeadSyscall) syscall.s(s.syscall);
        }
        for (Out* col : {&thr, &head, &time, &stack, &weight, &flags, &off_flags, &syscall}) hdr.b += col->b;
        LOOPSPY_CHECK(append_chunk(out, kChunkSamples, hdr.b));
        // The samples' coroutines ride in a chunk of their own, which 1.0 readers skip.
        bool any_coro = false;
        for (std::size_t i = samples_; i < end && !any_coro; ++i) any_coro = samples(i).coro != 0;
        if (any_coro) {
            // A table of the chunk's distinct coroutines (ascending, as deltas), then per sample
            // its index in the table plus one (0: none): a busy loop has a few hundred tasks at
            // most, so a sample costs a byte, which zlib squeezes further.
            std::vector<std::uint64_t> distinct;
            for (std::size_t i = samples_; i < end; ++i) {
                if (samples(i).coro) distinct.push_back(samples(i).coro);
            }
            std::sort(distinct.begin(), distinct.end());
            distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
            Out c;
            c.u(samples_);
            c.u(end - samples_);
            c.u(distinct.size());
            std::uint64_t prev = 0;
            for (std::uint64_t d : distinct) {
                c.u(d - prev);
                prev = d;
            }
            for (std::size_t i = samples_; i < end; ++i) {
                std::uint64_t coro = samples(i).coro;
                c.u(coro ? static_cast<std::uint64_t>(std::lower_bound(distinct.begin(), distinct.end(), coro) - distinct.begin()) + 1 : 0);
            }
            LOOPSPY_CHECK(append_chunk(out, kChunkSampleCoros, c.b));
        }
        samples_ = end;
    }

    // ---- tasks: first id, count, then addr, coro, name, coroutine name per task ----
    while (tasks_ < p.tasks().size()) {
        std::size_t end = std::min(p.tasks().size(), tasks_ + kWriterBatch);
        Out o;
        o.u(tasks_);
        o.u(end - tasks_);
        for (std::size_t i = tasks_; i < end; ++i) {
            const TaskRecord& t = p.tasks()[i];
            o.u(t.addr);
            o.u(t.coro);
            o.u(t.name);
            o.u(t.coro_name);
        }
        LOOPSPY_CHECK(append_chunk(out, kChunkTasks, o.b));
        tasks_ = end;
    }

    // ---- task snapshots: first id, count, then per snapshot its time, removed and changed ----
    {
        const auto& held = p.task_snapshots();
        const std::size_t base = p.snapshots_dropped();
        if (snapshots_ < base) return make_error(ErrorKind::Internal, "task snapshots were dropped before they were written");
        while (snapshots_ < base + held.size()) {
            std::size_t end = snapshots_, entries = 0;
            while (end < base + held.size() && (end == snapshots_ || entries < kWriterBatch)) {
                entries += held[end - base].changed.size() + held[end - base].removed.size();
                ++end;
            }
            Out o;
            o.u(snapshots_);
            o.u(end - snapshots_);
            std::int64_t prev = 0;
            for (std::size_t i = snapshots_; i < end; ++i) {
                const TaskSnapshot& snap = held[i - base];
                o.s(wrap_sub(snap.time.value, prev));
                prev = snap.time.value;
                o.u(snap.removed.size());
                for (TaskId id : snap.removed) o.u(id);
                o.u(snap.changed.size());
                for (const TaskEntry& e : snap.changed) {
                    o.u(e.task);
                    o.u(static_cast<std::uint32_t>(e.state));
                    o.u(e.stack);
                    o.u(e.awaited_by.size());
                    for (TaskId a : e.awaited_by) o.u(a);
                }
            }
            LOOPSPY_CHECK(append_chunk(out, kChunkTaskSnapshots, o.b));
            snapshots_ = end;
        }
    }

    // ---- selector waits: columns, each time against the one before it ----
    while (waits_ < waits_end) {
        std::size_t end = std::min(waits_end, waits_ + kWriterBatch);
        Out hdr, thr, syscall, prev_leave, enter, leave, folded, folded_wait, folded_busy;
        std::int64_t base = waits(waits_).enter.value;
        hdr.u(waits_);
        hdr.u(end - waits_);
        hdr.s(base);
        std::unordered_map<std::uint32_t, std::int64_t> last_leave;
        for (std::size_t i = waits_; i < end; ++i) {
            const SelectorWait& w = waits(i);
            std::uint32_t t = thread_index_.at(w.tid);
            auto [it, fresh] = last_leave.try_emplace(t, base);
            thr.u(t);
            syscall.s(w.syscall);
            // The kernel's previous_leave is the last selector return, folded ones included, so
            // it is the thread's last reported leave plus the folded busy and wait times.
            prev_leave.s(wrap_sub(w.previous_leave.value,
                                  wrap_add(it->second, wrap_add(w.folded_busy_time.value, w.folded_wait_time.value))));
            enter.s(wrap_sub(w.enter.value, w.previous_leave.value != 0 ? w.previous_leave.value : it->second));
            leave.s(wrap_sub(w.leave.value, w.enter.value));
            folded.u(w.folded_waits);
            folded_wait.s(w.folded_wait_time.value);
            folded_busy.s(w.folded_busy_time.value);
            it->second = w.leave.value;
        }
        for (Out* col : {&thr, &syscall, &prev_leave, &enter, &leave, &folded, &folded_wait, &folded_busy}) hdr.b += col->b;
        LOOPSPY_CHECK(append_chunk(out, kChunkSelectorWaits, hdr.b));
        waits_ = end;
    }

    // ---- loss counters, when they changed ----
    if (!(p.lost == lost_)) {
        Out o;
        put_loss(o, p.lost);
        LOOPSPY_CHECK(append_chunk(out, kChunkLoss, o.b));
        lost_ = p.lost;
    }
    return {};
}

Result<void> RecordingWriter::flush(const Profile& profile) {
    if (failure_) return *failure_;
    if (finished_) return make_error(ErrorKind::Internal, "recording " + path_ + " is already finished");
    std::string out;
    if (auto r = encode_new(profile, out); !r) {
        failure_ = r.error();
        return r;
    }
    if (out.empty()) return {};
    return write_all(out);
}

Result<void> RecordingWriter::finish(const Profile& profile, std::string_view ending) {
    if (failure_) return *failure_;
    if (finished_) return make_error(ErrorKind::Internal, "recording " + path_ + " is already finished");
    std::string out;
    if (auto r = encode_new(profile, out); !r) {
        failure_ = r.error();
        return r;
    }
    Out o;
    o.s(profile.info.end.value);
    o.str(ending);
    put_loss(o, profile.lost);
    LOOPSPY_CHECK(append_chunk(out, kChunkEnd, o.b));
    LOOPSPY_CHECK(write_all(out));
    finished_ = true;
    if (::fsync(fd_.get()) != 0) {
        failure_ = make_error(ErrorKind::Io, "cannot write recording " + path_ + ": " + std::strerror(errno));
        return *failure_;
    }
    fd_.reset();
    return {};
}

// ================================ reader ================================

namespace {

class Decoder {
public:
    explicit Decoder(ReadResult& r) : r_(r), p_(r.profile) {}

    bool sample_data = false;  // a samples or selector-waits chunk was read

    /// Decodes one known chunk into the profile. Throws Damage.
    void decode(std::uint32_t type, In& in) {
        switch (type) {
            case kChunkMeta: return meta(in);
            case kChunkStrings: return strings(in);
            case kChunkFrames: return frames(in);
            case kChunkStacks: return stacks(in);
            case kChunkThreads: return threads(in);
            case kChunkThreadNames: return thread_names(in);
            case kChunkSamples: return samples(in);
            case kChunkSelectorWaits: return waits(in);
            case kChunkLoss: p_.lost = get_loss(in); return;
            case kChunkEnd: return end(in);
            case kChunkSampleCoros: return sample_coros(in);
            case kChunkTasks: return tasks(in);
            case kChunkTaskSnapshots: return task_snapshots(in);
            default: return;
        }
    }

private:
    void meta(In& in) {
        ProfileInfo& info = p_.info;
        info.tool_version = in.str("the tool version");
        info.command_line = in.str("the command line");
        info.pid = Pid{in.i32("the pid")};
        info.target_command = in.str("the target command");
        info.python = PythonVersion{in.u32("the Python version")};
        info.python_binary = in.str("the Python binary");
        info.kernel = in.str("the kernel");
        (void)in.str("the clock");  // always CLOCK_MONOTONIC in 1.x
        info.rate_hz = in.i32("the rate");
        info.start = Nanoseconds{in.s()};
    }

    void first_id(In& in, std::size_t expected, const char* what) {
        if (in.u() != expected) throw Damage{std::string(what) + " out of order (a chunk is missing or repeated)"};
    }

    void strings(In& in) {
        first_id(in, p_.string_count(), "strings");
        std::size_t n = in.count(1, "strings");
        std::vector<std::size_t> lengths(n);
        std::uint64_t total = 0;
        for (auto& len : lengths) {
            std::uint64_t v = in.u();
            if (v > in.left()) throw Damage{"a string runs past the end of its chunk"};
            total += v;
            len = static_cast<std::size_t>(v);
        }
        if (total > in.left()) throw Damage{"strings run past the end of their chunk"};
        for (std::size_t len : lengths) {
            std::size_t expected = p_.string_count();
            if (p_.intern_string(in.bytes(len, "a string")) != expected) throw Damage{"a string is repeated"};
        }
    }

    void frames(In& in) {
        first_id(in, p_.frame_count(), "frames");
        std::size_t n = in.count(4, "frames");
        std::vector<FrameRecord> recs(n);
        std::int64_t name = 0, file = 0;
        for (auto& f : recs) {
            name = wrap_add(name, in.s());
            file = wrap_add(file, in.s());
            if (name < 0 || static_cast<std::uint64_t>(name) >= p_.string_count() || file < 0 ||
                static_cast<std::uint64_t>(file) >= p_.string_count()) {
                throw Damage{"a frame names a string the recording does not have"};
            }
            f.name = static_cast<StringId>(name);
            f.file = static_cast<StringId>(file);
            f.line = in.i32("a line number");
            f.flags = in.u32("frame flags");
        }
        for (const FrameRecord& f : recs) {
            std::size_t expected = p_.frame_count();
            std::string name_text(p_.string(f.name)), file_text(p_.string(f.file));
            if (p_.intern_frame(name_text, file_text, f.line, f.flags) != expected) throw Damage{"a frame is repeated"};
        }
    }

    void stacks(In& in) {
        first_id(in, p_.stack_count(), "stacks");
        std::size_t n = in.count(1, "stacks");
        std::vector<std::pair<std::size_t, std::size_t>> spans(n);
        std::vector<FrameId> all;
        for (auto& [begin, size] : spans) {
            std::uint64_t depth = in.u();
            if (depth > kMaxStackDepth || depth > in.left()) throw Damage{"an absurd stack depth"};
            begin = all.size();
            size = static_cast<std::size_t>(depth);
            for (std::uint64_t i = 0; i < depth; ++i) {
                std::uint64_t f = in.u();
                if (f >= p_.frame_count()) throw Damage{"a stack names a frame the recording does not have"};
                all.push_back(static_cast<FrameId>(f));
            }
        }
        for (auto [begin, size] : spans) {
            std::size_t expected = p_.stack_count();
            if (p_.intern_stack(std::span<const FrameId>(all.data() + begin, size)) != expected) {
                throw Damage{"a stack is repeated"};
            }
        }
    }

    void threads(In& in) {
        first_id(in, thread_tids_.size(), "threads");
        std::size_t n = in.count(1, "threads");
        std::int64_t prev = 0;
        for (std::size_t i = 0; i < n; ++i) {
            std::int64_t v = wrap_add(prev, in.s());
            if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max()) {
                throw Damage{"a thread id out of range"};
            }
            prev = v;
            Tid tid{static_cast<std::int32_t>(v)};
            if (!thread_ids_.emplace(tid, static_cast<std::uint32_t>(thread_tids_.size())).second) {
                throw Damage{"a thread is declared twice"};
            }
            thread_tids_.push_back(tid);
        }
    }

    void thread_names(In& in) {
        std::size_t n = in.count(2, "thread names");
        std::vector<std::pair<Tid, std::string_view>> names(n);
        for (auto& [tid, name] : names) {
            tid = Tid{in.i32("a thread id")};
            name = in.str("a thread name");
        }
        for (auto& [tid, name] : names) p_.set_thread_name(tid, std::string(name));
    }

    std::uint32_t thread(In& in) {
        std::uint64_t t = in.u();
        if (t >= thread_tids_.size()) throw Damage{"an event of a thread the recording did not declare"};
        return static_cast<std::uint32_t>(t);
    }

    void samples(In& in) {
        first_id(in, p_.samples().size(), "samples");
        const std::size_t n = in.count(4, "samples");  // thread, head, time and stack: a byte each at least
        const std::int64_t default_weight = in.s();
        const std::int64_t base = in.s();
        // Scratch columns live across chunks: a recording's chunks are all about the same size.
        auto& recs = scratch_samples_;
        auto& index = scratch_index_;
        auto& heads = scratch_heads_;
        recs.assign(n, SampleRecord{});
        index.resize(n);
        heads.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            index[i] = thread(in);
            recs[i].tid = thread_tids_[index[i]];
        }
        for (std::size_t i = 0; i < n; ++i) {
            std::uint64_t h = in.u();
            std::uint64_t kind = h & kHeadKindMask;
            if ((h & ~std::uint64_t{kHeadKnown}) || (kind != 1 && kind != 2)) throw Damage{"a sample of unknown kind"};
            heads[i] = static_cast<std::uint8_t>(h);
            recs[i].kind = static_cast<SampleKind>(kind);
        }
        for (auto& r : recs) r.time = Nanoseconds{in.s()};  // deltas for now
        const std::size_t stacks = p_.stack_count();
        for (auto& r : recs) {
            std::uint64_t s = in.u();
            if (s >= stacks) throw Damage{"a sample names a stack the recording does not have"};
            r.stack = static_cast<StackId>(s);
        }
        for (std::size_t i = 0; i < n; ++i) recs[i].weight = Nanoseconds{heads[i] & kHeadWeight ? in.s() : default_weight};
        for (std::size_t i = 0; i < n; ++i) {
            if (heads[i] & kHeadFlags) recs[i].flags = in.u32("sample flags");
        }
        for (std::size_t i = 0; i < n; ++i) {
            if (heads[i] & kHeadOffFlags) recs[i].off_flags = in.u32("off-CPU flags");
        }
        for (std::size_t i = 0; i < n; ++i) {
            if (heads[i] & kHeadSyscall) recs[i].syscall = in.i32("a syscall number");
        }
        // Each thread's times are predicted from its previous sample's end (the chunk's base at first).
        std::vector<std::int64_t>& predicted = scratch_predicted_;
        predicted.assign(thread_tids_.size(), base);
        for (std::size_t i = 0; i < n; ++i) {
            std::int64_t& next = predicted[index[i]];
            recs[i].time = Nanoseconds{wrap_add(next, recs[i].time.value)};
            next = wrap_add(recs[i].time.value, recs[i].weight.value);
        }
        p_.add_samples(recs);
        sample_data = true;
    }

    void sample_coros(In& in) {
        std::uint64_t first = in.u();
        std::size_t n = in.count(1, "sample coroutines");
        if (first > p_.samples().size() || p_.samples().size() - first < n) {
            throw Damage{"sample coroutines name samples the recording does not have"};
        }
        std::size_t ndistinct = in.count(1, "distinct coroutines");
        std::vector<std::uint64_t> distinct(ndistinct);
        std::uint64_t prev = 0;
        for (auto& d : distinct) d = prev += in.u();
        for (std::size_t i = 0; i < n; ++i) {
            std::uint64_t k = in.u();
            if (k > distinct.size()) throw Damage{"a sample names a coroutine its chunk does not list"};
            p_.set_sample_coro(first + i, k ? distinct[k - 1] : 0);
        }
    }

    void tasks(In& in) {
        first_id(in, p_.tasks().size(), "tasks");
        std::size_t n = in.count(4, "tasks");
        for (std::size_t i = 0; i < n; ++i) {
            TaskRecord t;
            t.addr = in.u();
            t.coro = in.u();
            std::uint64_t name = in.u(), coro_name = in.u();
            if (name >= p_.string_count() || coro_name >= p_.string_count()) {
                throw Damage{"a task names a string the recording does not have"};
            }
            t.name = static_cast<StringId>(name);
            t.coro_name = static_cast<StringId>(coro_name);
            if (p_.intern_task(t) != p_.tasks().size() - 1) throw Damage{"a task is repeated"};
        }
    }

    TaskId task_id(In& in) {
        std::uint64_t id = in.u();
        if (id >= p_.tasks().size()) throw Damage{"a task snapshot names a task the recording does not have"};
        return static_cast<TaskId>(id);
    }

    void task_snapshots(In& in) {
        first_id(in, p_.task_snapshots().size(), "task snapshots");
        std::size_t n = in.count(3, "task snapshots");
        std::int64_t prev = 0;
        for (std::size_t i = 0; i < n; ++i) {
            TaskSnapshot snap;
            prev = wrap_add(prev, in.s());
            snap.time = Nanoseconds{prev};
            std::size_t removed = in.count(1, "removed tasks");
            for (std::size_t k = 0; k < removed; ++k) snap.removed.push_back(task_id(in));
            std::size_t changed = in.count(4, "changed tasks");
            for (std::size_t k = 0; k < changed; ++k) {
                TaskEntry e;
                e.task = task_id(in);
                std::uint64_t state = in.u();
                if (state > 2) throw Damage{"a task state loopspy does not know"};
                e.state = static_cast<TaskState>(state);
                std::uint64_t stack = in.u();
                if (stack >= p_.stack_count()) throw Damage{"a task snapshot names a stack the recording does not have"};
                e.stack = static_cast<StackId>(stack);
                std::size_t awaiters = in.count(1, "awaiting tasks");
                for (std::size_t a = 0; a < awaiters; ++a) e.awaited_by.push_back(task_id(in));
                snap.changed.push_back(std::move(e));
            }
            p_.add_task_snapshot(std::move(snap));
        }
    }

    void waits(In& in) {
        first_id(in, p_.selector_waits().size(), "selector waits");
        std::size_t n = in.count(8, "selector waits");  // eight columns of a byte at least
        std::int64_t base = in.s();
        auto& recs = scratch_waits_;
        auto& index = scratch_index_;
        recs.assign(n, SelectorWait{});
        index.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            index[i] = thread(in);
            recs[i].tid = thread_tids_[index[i]];
        }
        for (auto& w : recs) w.syscall = in.i32("a selector syscall");
        for (auto& w : recs) w.previous_leave = Nanoseconds{in.s()};
        for (auto& w : recs) w.enter = Nanoseconds{in.s()};
        for (auto& w : recs) w.leave = Nanoseconds{in.s()};
        for (auto& w : recs) w.folded_waits = in.u32("a folded wait count");
        for (auto& w : recs) w.folded_wait_time = Nanoseconds{in.s()};
        for (auto& w : recs) w.folded_busy_time = Nanoseconds{in.s()};
        // Each thread's times are predicted from its previous wait's leave (the chunk's base at first).
        std::vector<std::int64_t>& last_leave = scratch_predicted_;
        last_leave.assign(thread_tids_.size(), base);
        for (std::size_t i = 0; i < n; ++i) {
            SelectorWait& w = recs[i];
            std::int64_t& last = last_leave[index[i]];
            w.previous_leave = Nanoseconds{wrap_add(
                wrap_add(last, wrap_add(w.folded_busy_time.value, w.folded_wait_time.value)), w.previous_leave.value)};
            w.enter = Nanoseconds{wrap_add(w.previous_leave.value != 0 ? w.previous_leave.value : last, w.enter.value)};
            w.leave = Nanoseconds{wrap_add(w.enter.value, w.leave.value)};
            last = w.leave.value;
        }
        p_.add_selector_waits(recs);
        sample_data = true;
    }

    void end(In& in) {
        std::int64_t end = in.s();
        std::string_view ending = in.str("the ending");
        LossCounters lost = get_loss(in);
        p_.info.end = Nanoseconds{end};
        r_.ending = std::string(ending);
        p_.lost = lost;
        r_.complete = true;
    }

    ReadResult& r_;
    Profile& p_;
    std::vector<Tid> thread_tids_;
    // Reused by every samples and selector-waits chunk (see samples() and waits()).
    std::vector<SampleRecord> scratch_samples_;
    std::vector<SelectorWait> scratch_waits_;
    std::vector<std::uint32_t> scratch_index_;
    std::vector<std::uint8_t> scratch_heads_;
    std::vector<std::int64_t> scratch_predicted_;
    std::unordered_map<Tid, std::uint32_t> thread_ids_;
};

/// The last instant the data covers, for a recording without END.
Nanoseconds data_end(const Profile& p) {
    Nanoseconds end = p.info.start;
    for (const auto& s : p.samples()) {
        Nanoseconds t = s.kind == SampleKind::OffCpu ? Nanoseconds{wrap_add(s.time.value, s.weight.value)} : s.time;
        if (t > end) end = t;
    }
    for (const auto& w : p.selector_waits()) {
        if (w.leave > end) end = w.leave;
    }
    return end;
}

/// Upper bounds on the samples and selector waits a recording holds, from its chunk headers
/// alone (a sample takes at least 4 bytes of a chunk's body, a wait 8), each capped at 4 a byte
/// of file: enough to reserve their memory once. Stops at the first header that does not check
/// out; the reader proper judges the chunks.
struct EventBounds {
    std::size_t samples = 0;
    std::size_t waits = 0;
};

EventBounds event_bounds(const std::uint8_t* data, std::size_t size) {
    std::uint64_t samples = 0, waits = 0;
    std::size_t pos = kFileHeaderSize;
    while (pos <= size && size - pos >= kChunkHeaderSize) {
        const std::uint8_t* h = data + pos;
        if (crc_of(h, 20) != get_le32(h + 20)) break;
        const std::uint32_t stored = get_le32(h + 8);
        if (stored > size - pos - kChunkHeaderSize) break;
        const std::uint32_t raw = std::min(get_le32(h + 12), kMaxChunkRaw);
        if (get_le32(h) == kChunkSamples) samples += raw / 4;
        if (get_le32(h) == kChunkSelectorWaits) waits += raw / 8;
        pos += kChunkHeaderSize + stored;
    }
    const std::uint64_t cap = std::uint64_t{size} * 4;
    return {static_cast<std::size_t>(std::min(samples, cap)), static_cast<std::size_t>(std::min(waits, cap))};
}

}  // namespace

Result<ReadResult> read_recording_bytes(std::span<const std::byte> bytes) {
    const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
    const std::size_t size = bytes.size();
    ReadResult r;
    r.bytes_total = size;
    if (size == 0) return make_error(ErrorKind::BadInput, "empty file, not a loopspy recording");
    if (std::memcmp(data, kMagic, std::min(size, sizeof(kMagic))) != 0) {
        return make_error(ErrorKind::BadInput, "not a loopspy recording");
    }
    if (size < kFileHeaderSize) {
        return make_error(ErrorKind::BadInput, "recording cut short inside its file header");
    }
    std::uint16_t major = get_le16(data + 8);
    if (major > kFormatMajor) {
        return make_error(ErrorKind::BadInput, "recording format " + std::to_string(major) +
                                                   ".x is newer than this loopspy (reads " +
                                                   std::to_string(kFormatMajor) + ".x)");
    }
    if (major < kFormatMajor) {
        return make_error(ErrorKind::BadInput, "recording format " + std::to_string(major) +
                                                   ".x is not one this loopspy reads (it reads " +
                                                   std::to_string(kFormatMajor) + ".x)");
    }

    const EventBounds bounds = event_bounds(data, size);
    r.profile.reserve_events(bounds.samples, bounds.waits);
    Decoder decoder(r);
    std::size_t pos = kFileHeaderSize;
    std::string problem;    // why reading stopped early, e.g. "a bad checksum in the samples chunk at byte 123"
    bool cut = false;       // ... and whether it looks like a cut (an incomplete last chunk) rather than damage
    std::vector<std::uint8_t> raw;
    while (pos < size) {
        const std::size_t left = size - pos;
        if (left < kChunkHeaderSize) {
            cut = true;
            problem = "an incomplete chunk";
            break;
        }
        const std::uint8_t* h = data + pos;
        if (crc_of(h, 20) != get_le32(h + 20)) {
            problem = "a damaged chunk header at byte " + std::to_string(pos);
            break;
        }
        const std::uint32_t type = get_le32(h), flags = get_le32(h + 4), stored = get_le32(h + 8),
                            raw_len = get_le32(h + 12), crc = get_le32(h + 16);
        const char* name = chunk_name(type);
        const std::string where = std::string(name ? "the " + std::string(name) + " chunk" : "a chunk") +
                                  " at byte " + std::to_string(pos);
        if (stored > compressBound(kMaxChunkRaw)) {
            problem = "an absurd length in " + where;
            break;
        }
        if (stored > left - kChunkHeaderSize) {  // a sound header whose body goes past the end: cut
            cut = true;
            problem = "an incomplete chunk";
            break;
        }
        const std::uint8_t* body = h + kChunkHeaderSize;
        if (crc_of(body, stored) != crc) {
            problem = "a bad checksum in " + where;
            break;
        }
        const std::size_t next = pos + kChunkHeaderSize + stored;
        if (!name) {  // a chunk type of a newer minor version: skipped
            ++r.chunks;
            pos = next;
            continue;
        }
        if (flags & ~kChunkZlib) {
            problem = "unknown flags in " + where;
            break;
        }
        if (raw_len > kMaxChunkRaw ||
            ((flags & kChunkZlib) ? raw_len > std::uint64_t{stored} * kDeflateMaxRatio + 1024 : raw_len != stored)) {
            problem = "an absurd length in " + where;
            break;
        }
        const std::uint8_t* content = body;
        if (flags & kChunkZlib) {
            raw.resize(raw_len);
            uLongf out_len = raw_len;
            uLong in_len = stored;
            int rc = uncompress2(raw.data(), &out_len, body, &in_len);
            if (rc != Z_OK || out_len != raw_len || in_len != stored) {
                problem = "a body that does not decompress in " + where;
                break;
            }
            content = raw.data();
        }
        In in(content, raw_len);
        try {
            decoder.decode(type, in);
        } catch (const Damage& d) {
            problem = d.what + " in " + where;
            break;
        }
        ++r.chunks;
        pos = next;
        if (type == kChunkEnd) break;
    }

    const std::size_t unread = size - pos;
    r.bytes_unread = unread;
    if (!problem.empty() && !decoder.sample_data) {
        return make_error(ErrorKind::BadInput,
                          cut ? "recording cut short before any samples: the last " + std::to_string(unread) +
                                    " bytes (" + problem + ") were not readable"
                              : "recording damaged before any samples: " + problem);
    }
    if (!r.complete) r.profile.info.end = data_end(r.profile);
    const Nanoseconds replayable{wrap_sub(r.profile.info.end.value, r.profile.info.start.value)};
    const std::string replays = "it replays up to " + seconds_text(replayable) + " s";
    if (!problem.empty()) {
        r.warning = cut ? "recording cut short: the last " + std::to_string(unread) + " bytes (" + problem +
                              ") were not readable; " + replays
                        : "recording damaged: " + problem + "; the last " + std::to_string(unread) +
                              " bytes were not read; " + replays;
    } else if (!r.complete) {
        r.warning = "recording cut short: it has no end record (the recorder did not finish it); " + replays;
    } else if (unread > 0) {
        r.warning = std::to_string(unread) + " bytes after the end of the recording were ignored";
    }
    return r;
}

Result<ReadResult> read_recording(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return make_error(ErrorKind::Io, "cannot open recording " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) == 0 && S_ISDIR(st.st_mode)) {
        return make_error(ErrorKind::BadInput, path + ": is a directory, not a loopspy recording");
    }
    std::vector<std::byte> bytes;
    if (S_ISREG(st.st_mode) && st.st_size > 0) bytes.reserve(static_cast<std::size_t>(st.st_size));
    std::byte buf[1 << 16];
    while (true) {
        ssize_t n = ::read(fd.get(), buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return make_error(ErrorKind::Io, "cannot read recording " + path + ": " + std::strerror(errno));
        if (n == 0) break;
        bytes.insert(bytes.end(), buf, buf + n);
    }
    auto r = read_recording_bytes(bytes);
    if (!r) return make_error(r.error().kind, path + ": " + r.error().message);
    return r;
}

}  // namespace loopspy
