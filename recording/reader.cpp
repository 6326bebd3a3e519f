// The recording reader: checks each chunk's framing and checksums, decodes it into a Profile,
// and reads a damaged or cut file up to its damage (docs/recording-format.md).
#include "recording/format.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "recording/framing.hpp"

namespace loopspy {

using namespace recording_format::detail;


namespace {

class Decoder {
public:
    /// `minor`: the file's format minor version. From 1.4 on, the names and records of tasks may
    /// repeat (a recorder lets go of those of tasks that are gone).
    Decoder(ReadResult& r, std::uint16_t minor) : r_(r), p_(r.profile), task_repeats_(minor >= 4) {}

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
            case kChunkSampleTasks: return sample_tasks(in);
            case kChunkSampleGilHolders: return sample_gil_holders(in);
            case kChunkTasks: return tasks(in);
            case kChunkTaskSnapshots: return task_snapshots(in);
            case kChunkProcesses: return processes(in);
            case kChunkThreadProcesses: return thread_processes(in);
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
            const std::string_view text = in.bytes(len, "a string");
            if (task_repeats_) p_.add_string(text);
            else if (p_.intern_string(text) != expected) throw Damage{"a string is repeated"};
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

    void processes(In& in) {
        std::size_t n = in.count(5, "processes");
        std::vector<ProcessRecord> recs(n);
        for (ProcessRecord& r : recs) {
            r.pid = Pid{in.i32("a pid")};
            r.parent = Pid{in.i32("a parent pid")};
            r.command = in.str("a process's command");
            r.python = PythonVersion{in.u32("a process's Python version")};
            r.python_binary = in.str("a process's Python binary");
        }
        for (ProcessRecord& r : recs) p_.set_process(std::move(r));
    }

    void thread_processes(In& in) {
        std::size_t n = in.count(2, "thread processes");
        std::vector<std::pair<Tid, Pid>> entries(n);
        for (auto& [tid, pid] : entries) {
            tid = Tid{in.i32("a thread id")};
            pid = Pid{in.i32("a pid")};
        }
        for (auto& [tid, pid] : entries) p_.set_thread_process(tid, pid);
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

    /// The head of a column chunk of per-sample values: the first sample and how many follow,
    /// checked against the samples read so far.
    std::pair<std::uint64_t, std::size_t> sample_column(In& in, const char* what) {
        std::uint64_t first = in.u();
        std::size_t n = in.count(1, what);
        if (first > p_.samples().size() || p_.samples().size() - first < n) {
            throw Damage{std::string(what) + " name samples the recording does not have"};
        }
        return {first, n};
    }

    void sample_tasks(In& in) {
        const auto [first, n] = sample_column(in, "sample tasks");
        for (std::size_t i = 0; i < n; ++i) {
            std::uint64_t k = in.u();
            if (k > p_.task_count()) throw Damage{"a sample names a task the recording does not have"};
            p_.set_sample_task(first + i, static_cast<std::uint32_t>(k));
        }
    }

    void sample_gil_holders(In& in) {
        const auto [first, n] = sample_column(in, "sample GIL holders");
        for (std::size_t i = 0; i < n; ++i) {
            std::int64_t tid = in.s();
            if (tid < 0 || tid > INT32_MAX) throw Damage{"a GIL holder is not a thread id"};
            p_.set_sample_gil_holder(first + i, Tid{static_cast<std::int32_t>(tid)});
        }
    }

    void sample_coros(In& in) {
        const auto [first, n] = sample_column(in, "sample coroutines");
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
        std::vector<TaskRecord> recs(n);
        for (TaskRecord& t : recs) {
            t.addr = in.u();
            t.coro = in.u();
            std::uint64_t name = in.u(), coro_name = in.u();
            if (name >= p_.string_count() || coro_name >= p_.string_count()) {
                throw Damage{"a task names a string the recording does not have"};
            }
            t.name = static_cast<StringId>(name);
            t.coro_name = static_cast<StringId>(coro_name);
            t.pid = p_.info.pid;  // a 1.1 recording holds one process
        }
        if (in.left() > 0) {
            for (TaskRecord& t : recs) t.pid = Pid{in.i32("a task's pid")};
        }
        for (const TaskRecord& t : recs) {
            if (task_repeats_) p_.add_task(t);
            else if (p_.intern_task(t) != p_.tasks().size() - 1) throw Damage{"a task is repeated"};
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
        std::vector<TaskSnapshot> snaps(n);
        for (TaskSnapshot& snap : snaps) {
            snap.pid = p_.info.pid;  // a 1.1 recording holds one process
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
        }
        if (in.left() > 0) {
            for (TaskSnapshot& snap : snaps) snap.pid = Pid{in.i32("a task snapshot's pid")};
        }
        for (TaskSnapshot& snap : snaps) p_.add_task_snapshot(std::move(snap));
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
    bool task_repeats_;
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

/// Where the reader takes its bytes from: memory (the fuzzer, tests) or a file read piece by
/// piece with pread, so that reading never holds more of the file than one chunk.
class Source {
public:
    virtual ~Source() = default;
    std::size_t size() const { return size_; }
    /// The bytes [pos, pos + n), n <= size() - pos: a pointer into memory, or `scratch` filled
    /// from the file. nullptr when the file could not be read (`error` says why).
    virtual const std::uint8_t* view(std::size_t pos, std::size_t n, std::vector<std::uint8_t>& scratch) = 0;
    std::string error;

protected:
    std::size_t size_ = 0;
};

class MemorySource final : public Source {
public:
    explicit MemorySource(std::span<const std::byte> bytes) : data_(reinterpret_cast<const std::uint8_t*>(bytes.data())) {
        size_ = bytes.size();
    }
    const std::uint8_t* view(std::size_t pos, std::size_t, std::vector<std::uint8_t>&) override { return data_ + pos; }

private:
    const std::uint8_t* data_;
};

class FileSource final : public Source {
public:
    FileSource(int fd, std::size_t size) : fd_(fd) { size_ = size; }
    const std::uint8_t* view(std::size_t pos, std::size_t n, std::vector<std::uint8_t>& scratch) override {
        scratch.resize(n);
        std::size_t got = 0;
        while (got < n) {
            const ssize_t r = ::pread(fd_, scratch.data() + got, n - got, static_cast<off_t>(pos + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                error = r < 0 ? std::strerror(errno) : "the file got shorter while it was read";
                return nullptr;
            }
            got += static_cast<std::size_t>(r);
        }
        return scratch.data();
    }

private:
    int fd_;
};

/// Upper bounds on the samples and selector waits a recording holds, from its chunk headers
/// alone (a sample takes at least 4 bytes of a chunk's body, a wait 8), each capped at 4 a byte
/// of file: enough to reserve their memory once. Stops at the first header that does not check
/// out; the reader proper judges the chunks.
struct EventBounds {
    std::size_t samples = 0;
    std::size_t waits = 0;
};

EventBounds event_bounds(Source& src) {
    const std::size_t size = src.size();
    std::uint64_t samples = 0, waits = 0;
    std::size_t pos = kFileHeaderSize;
    std::vector<std::uint8_t> scratch;
    while (pos <= size && size - pos >= kChunkHeaderSize) {
        const std::uint8_t* h = src.view(pos, kChunkHeaderSize, scratch);
        if (!h || crc_of(h, 20) != get_le32(h + 20)) break;
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

Result<ReadResult> read_from(Source& src) {
    const std::size_t size = src.size();
    ReadResult r;
    r.bytes_total = size;
    if (size == 0) return make_error(ErrorKind::BadInput, "empty file, not a loopspy recording");
    std::vector<std::uint8_t> header_bytes, chunk_header, body_bytes;
    const std::uint8_t* data = src.view(0, std::min<std::size_t>(size, kFileHeaderSize), header_bytes);
    if (!data) return make_error(ErrorKind::Io, "cannot read it: " + src.error);
    if (std::memcmp(data, kMagic, std::min(size, sizeof(kMagic))) != 0) {
        return make_error(ErrorKind::BadInput, "not a loopspy recording");
    }
    if (size < kFileHeaderSize) {
        return make_error(ErrorKind::BadInput, "recording cut short inside its file header");
    }
    std::uint16_t major = get_le16(data + 8);
    const std::uint16_t minor = get_le16(data + 10);
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
    if (size == kFileHeaderSize) {
        return make_error(ErrorKind::BadInput, "empty recording: a file header and nothing recorded after it");
    }

    const EventBounds bounds = event_bounds(src);
    r.profile.reserve_events(bounds.samples, bounds.waits);
    Decoder decoder(r, minor);
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
        const std::uint8_t* h = src.view(pos, kChunkHeaderSize, chunk_header);
        if (!h) {
            problem = "a read error at byte " + std::to_string(pos) + " (" + src.error + ")";
            break;
        }
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
        const std::uint8_t* body = src.view(pos + kChunkHeaderSize, stored, body_bytes);
        if (!body) {
            problem = "a read error in " + where + " (" + src.error + ")";
            break;
        }
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

}  // namespace

Result<ReadResult> read_recording_bytes(std::span<const std::byte> bytes) {
    MemorySource src(bytes);
    return read_from(src);
}

namespace {

const char* file_type_text(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "a special file";
}

}  // namespace

Result<ReadResult> read_recording(const std::string& path) {
    // O_NONBLOCK: opening a FIFO with no writer must not wait for one.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd.valid()) return make_error(ErrorKind::Io, "cannot open recording " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return make_error(ErrorKind::Io, "cannot read recording " + path + ": " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return make_error(ErrorKind::BadInput, path + ": is " + file_type_text(st.st_mode) +
                                                   ", not a loopspy recording (a recording is a regular file)");
    }
    FileSource src(fd.get(), static_cast<std::size_t>(st.st_size));
    auto r = read_from(src);
    if (!r) return make_error(r.error().kind, path + ": " + r.error().message);
    return r;
}

}  // namespace loopspy
