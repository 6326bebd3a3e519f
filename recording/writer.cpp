// RecordingWriter: appends what is new in a Profile to the file as chunks, once a second, and
// ends it with the end record (docs/recording-format.md).
#include "recording/format.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/output_files.hpp"
#include "recording/framing.hpp"

namespace loopspy {

using namespace recording_format::detail;

/// The samples and selector waits a Profile still holds, by absolute id.
struct RecordingWriter::EventWindow {
    explicit EventWindow(const Profile& p)
        : samples(p.samples()),
          waits(p.selector_waits()),
          sample_base(p.samples_dropped()),
          wait_base(p.waits_dropped()),
          samples_end(sample_base + samples.size()),
          waits_end(wait_base + waits.size()) {}
    const SampleRecord& sample(std::size_t i) const { return samples[i - sample_base]; }
    const SelectorWait& wait(std::size_t i) const { return waits[i - wait_base]; }
    const std::vector<SampleRecord>& samples;
    const std::vector<SelectorWait>& waits;
    const std::size_t sample_base, wait_base, samples_end, waits_end;
};


RecordingWriter::RecordingWriter(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

RecordingWriter::~RecordingWriter() = default;

std::uint64_t RecordingWriter::bytes_written() const { return bytes_; }

Result<std::unique_ptr<RecordingWriter>> RecordingWriter::create(const std::string& path, bool force) {
    LOOPSPY_TRY(UniqueFd fd, open_growing_file(path, force));
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

// ---- metadata: on the first call, and again whenever it changed (the end goes in END) ----
Result<void> RecordingWriter::encode_meta(const Profile& p, std::string& out) {
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
    return {};
}

// ---- strings: first id, count, every length, then every string's bytes ----
Result<void> RecordingWriter::encode_strings(const Profile& p, std::string& out) {
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
    return {};
}

// ---- frames: first id, count, then (name delta, file delta, line, flags) each ----
Result<void> RecordingWriter::encode_frames(const Profile& p, std::string& out) {
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
    return {};
}

// ---- stacks: first id, count, then (depth, frame ids outermost first) each ----
Result<void> RecordingWriter::encode_stacks(const Profile& p, std::string& out) {
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
    return {};
}

// ---- threads: every tid that new samples or waits use gets the next index ----
Result<void> RecordingWriter::encode_threads(const EventWindow& ev, std::string& out) {
    std::vector<Tid> new_tids;
    auto see = [&](Tid t) {
        if (thread_index_.emplace(t, static_cast<std::uint32_t>(thread_index_.size())).second) new_tids.push_back(t);
    };
    for (std::size_t i = samples_; i < ev.samples_end; ++i) see(ev.sample(i).tid);
    for (std::size_t i = waits_; i < ev.waits_end; ++i) see(ev.wait(i).tid);
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
    return {};
}

// ---- processes, and the process of each thread, that are new or changed ----
Result<void> RecordingWriter::encode_processes(const Profile& p, std::string& out) {
    std::vector<const ProcessRecord*> changed;
    for (const auto& [pid, rec] : p.processes()) {
        auto it = processes_.find(pid);
        if (it == processes_.end() || it->second != rec) changed.push_back(&rec);
    }
    if (!changed.empty()) {
        Out o;
        o.u(changed.size());
        for (const ProcessRecord* r : changed) {
            o.s(r->pid.value);
            o.s(r->parent.value);
            o.str(r->command);
            o.u(r->python.hex);
            o.str(r->python_binary);
            processes_[r->pid] = *r;
        }
        LOOPSPY_CHECK(append_chunk(out, kChunkProcesses, o.b));
    }
    std::vector<std::pair<Tid, Pid>> moved;
    for (const auto& [tid, pid] : p.thread_processes()) {
        auto it = thread_processes_.find(tid);
        if (it == thread_processes_.end() || it->second != pid) moved.emplace_back(tid, pid);
    }
    for (std::size_t done = 0; done < moved.size();) {
        const std::size_t end = std::min(moved.size(), done + kWriterBatch);
        Out o;
        o.u(end - done);
        for (std::size_t i = done; i < end; ++i) {
            o.s(moved[i].first.value);
            o.s(moved[i].second.value);
            thread_processes_[moved[i].first] = moved[i].second;
        }
        LOOPSPY_CHECK(append_chunk(out, kChunkThreadProcesses, o.b));
        done = end;
    }
    return {};
}

// ---- thread names that are new or changed ----
Result<void> RecordingWriter::encode_thread_names(const Profile& p, std::string& out) {
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
    return {};
}

// ---- samples: columns; times per thread against a prediction (previous time + weight) ----
Result<void> RecordingWriter::encode_samples(const Profile& p, const EventWindow& ev, std::string& out) {
    const std::int64_t default_weight = p.info.rate_hz > 0 ? 1'000'000'000 / p.info.rate_hz : 0;
    while (samples_ < ev.samples_end) {
        std::size_t end = std::min(ev.samples_end, samples_ + kWriterBatch);
        Out hdr, thr, head, time, stack, weight, flags, off_flags, syscall;
        std::int64_t base = ev.sample(samples_).time.value;
        hdr.u(samples_);
        hdr.u(end - samples_);
        hdr.s(default_weight);
        hdr.s(base);
        std::unordered_map<std::uint32_t, std::int64_t> predicted;
        for (std::size_t i = samples_; i < end; ++i) {
            const SampleRecord& s = ev.sample(i);
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
        for (std::size_t i = samples_; i < end && !any_coro; ++i) any_coro = ev.sample(i).coro != 0;
        if (any_coro) {
            // A table of the chunk's distinct coroutines (ascending, as deltas), then per sample
            // its index in the table plus one (0: none): a busy loop has a few hundred tasks at
            // most, so a sample costs a byte, which zlib squeezes further.
            std::vector<std::uint64_t> distinct;
            for (std::size_t i = samples_; i < end; ++i) {
                if (ev.sample(i).coro) distinct.push_back(ev.sample(i).coro);
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
                std::uint64_t coro = ev.sample(i).coro;
                c.u(coro ? static_cast<std::uint64_t>(std::lower_bound(distinct.begin(), distinct.end(), coro) - distinct.begin()) + 1 : 0);
            }
            LOOPSPY_CHECK(append_chunk(out, kChunkSampleCoros, c.b));
        }
        // 1.4: the tasks captured running them, per sample its TaskId + 1 (0: none).
        bool any_task = false;
        for (std::size_t i = samples_; i < end && !any_task; ++i) any_task = ev.sample(i).task != 0;
        if (any_task) {
            Out t;
            t.u(samples_);
            t.u(end - samples_);
            for (std::size_t i = samples_; i < end; ++i) {
                if (ev.sample(i).task > p.task_count()) {
                    return make_error(ErrorKind::Internal, "a sample names a task the profile does not have");
                }
                t.u(ev.sample(i).task);
            }
            LOOPSPY_CHECK(append_chunk(out, kChunkSampleTasks, t.b));
        }
        // 1.5: for the GIL waits among them, the thread holding the GIL, per sample (0: none).
        bool any_holder = false;
        for (std::size_t i = samples_; i < end && !any_holder; ++i) any_holder = ev.sample(i).gil_holder.value != 0;
        if (any_holder) {
            Out h;
            h.u(samples_);
            h.u(end - samples_);
            for (std::size_t i = samples_; i < end; ++i) h.s(ev.sample(i).gil_holder.value);
            LOOPSPY_CHECK(append_chunk(out, kChunkSampleGilHolders, h.b));
        }
        samples_ = end;
    }
    return {};
}

// ---- tasks: first id, count, then addr, coro, name, coroutine name per task ----
Result<void> RecordingWriter::encode_tasks(const Profile& p, std::string& out) {
    // Task ids are absolute; the profile may have let go of tasks already written (drop_events).
    const std::size_t base = p.tasks_dropped();
    while (tasks_ < p.task_count()) {
        std::size_t end = std::min(p.task_count(), tasks_ + kWriterBatch);
        Out o;
        o.u(tasks_);
        o.u(end - tasks_);
        for (std::size_t i = tasks_; i < end; ++i) {
            const TaskRecord& t = p.tasks()[i - base];
            o.u(t.addr);
            o.u(t.coro);
            o.u(t.name);
            o.u(t.coro_name);
        }
        // 1.2: each task's process, a column after the entries (1.1 readers stop before it).
        for (std::size_t i = tasks_; i < end; ++i) o.s(p.tasks()[i - base].pid.value);
        LOOPSPY_CHECK(append_chunk(out, kChunkTasks, o.b));
        tasks_ = end;
    }
    return {};
}

// ---- task snapshots: first id, count, then per snapshot its time, removed and changed ----
Result<void> RecordingWriter::encode_task_snapshots(const Profile& p, std::string& out) {
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
            // 1.2: each snapshot's process, a column after the snapshots.
            for (std::size_t i = snapshots_; i < end; ++i) o.s(held[i - base].pid.value);
            LOOPSPY_CHECK(append_chunk(out, kChunkTaskSnapshots, o.b));
            snapshots_ = end;
        }
    }
    return {};
}

// ---- selector waits: columns, each time against the one before it ----
Result<void> RecordingWriter::encode_selector_waits(const EventWindow& ev, std::string& out) {
    while (waits_ < ev.waits_end) {
        std::size_t end = std::min(ev.waits_end, waits_ + kWriterBatch);
        Out hdr, thr, syscall, prev_leave, enter, leave, folded, folded_wait, folded_busy;
        std::int64_t base = ev.wait(waits_).enter.value;
        hdr.u(waits_);
        hdr.u(end - waits_);
        hdr.s(base);
        std::unordered_map<std::uint32_t, std::int64_t> last_leave;
        for (std::size_t i = waits_; i < end; ++i) {
            const SelectorWait& w = ev.wait(i);
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
    return {};
}

// ---- loss counters, when they changed ----
Result<void> RecordingWriter::encode_loss(const Profile& p, std::string& out) {
    if (!(p.lost == lost_)) {
        Out o;
        put_loss(o, p.lost);
        LOOPSPY_CHECK(append_chunk(out, kChunkLoss, o.b));
        lost_ = p.lost;
    }
    return {};
}

Result<void> RecordingWriter::encode_new(const Profile& p, std::string& out) {
    // Event ids are absolute; the profile may have let go of events already written (drop_events).
    const EventWindow ev(p);
    if (samples_ < ev.sample_base || waits_ < ev.wait_base) {
        return make_error(ErrorKind::Internal, "events were dropped before they were written");
    }
    LOOPSPY_CHECK(encode_meta(p, out));
    LOOPSPY_CHECK(encode_strings(p, out));
    LOOPSPY_CHECK(encode_frames(p, out));
    LOOPSPY_CHECK(encode_stacks(p, out));
    LOOPSPY_CHECK(encode_threads(ev, out));
    LOOPSPY_CHECK(encode_thread_names(p, out));
    LOOPSPY_CHECK(encode_processes(p, out));
    LOOPSPY_CHECK(encode_tasks(p, out));  // before the samples, whose captured tasks name them
    LOOPSPY_CHECK(encode_samples(p, ev, out));
    LOOPSPY_CHECK(encode_task_snapshots(p, out));
    LOOPSPY_CHECK(encode_selector_waits(ev, out));
    LOOPSPY_CHECK(encode_loss(p, out));
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

}  // namespace loopspy
