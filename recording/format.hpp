// The recording file format: a Profile persisted as a stream of self-describing, checksummed,
// zlib-compressed chunks, appended about once a second while recording so that a killed
// recorder loses at most the last second. The byte layout, every chunk type, the encodings,
// the versioning rules and what a reader does with damage are specified in
// docs/recording-format.md; keep the two in step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.hpp"
#include "core/unique_fd.hpp"
#include "recording/profile.hpp"

namespace loopspy {

inline constexpr std::uint16_t kFormatMajor = 1, kFormatMinor = 5;

/// Layout constants (docs/recording-format.md), exposed for tests and the fuzzer.
namespace recording_format {
inline constexpr char kMagic[8] = {'\x89', 'L', 'O', 'O', 'P', 'S', 'P', 'Y'};
inline constexpr std::size_t kFileHeaderSize = 16;   // magic, major u16, minor u16, reserved u32
inline constexpr std::size_t kChunkHeaderSize = 24;  // type, flags, stored length, raw length, body crc32, header crc32
inline constexpr std::uint32_t kChunkZlib = 1;       // chunk flag: the body is a zlib stream
inline constexpr std::uint32_t kMaxChunkRaw = 64u << 20;  // hard cap on a chunk's uncompressed body

enum ChunkType : std::uint32_t {
    kChunkMeta = 1,
    kChunkStrings = 2,
    kChunkFrames = 3,
    kChunkStacks = 4,
    kChunkThreads = 5,
    kChunkThreadNames = 6,
    kChunkSamples = 7,
    kChunkSelectorWaits = 8,
    kChunkLoss = 9,
    kChunkEnd = 10,
    kChunkSampleCoros = 11,    // 1.1: the coroutine of samples (SampleRecord::coro)
    kChunkTasks = 12,          // 1.1: task records
    kChunkTaskSnapshots = 13,  // 1.1: task snapshots (deltas)
    kChunkProcesses = 14,      // 1.2: the recorded processes
    kChunkThreadProcesses = 15,  // 1.2: which process each thread belongs to
    kChunkSampleTasks = 16,    // 1.4: the task captured running each sample (SampleRecord::task)
    kChunkSampleGilHolders = 17,  // 1.5: the thread holding the GIL a sample waited for (SampleRecord::gil_holder)
};
}  // namespace recording_format

class RecordingWriter {
public:
    /// Creates/truncates `path` and writes the file header. Io error with a clear message on failure.
    /// Never through a symbolic link unless `force`; only a regular file.
    static Result<std::unique_ptr<RecordingWriter>> create(const std::string& path, bool force = false);
    /// Appends, as self-describing chunks, everything the profile gained since the previous call
    /// (metadata on the first call: profile.info; new strings, frames, stacks, samples, selector
    /// waits, thread names that changed, the loss counters when they changed). Called about once a
    /// second while recording, so a killed recorder loses at most the last second. Each call ends
    /// with the data handed to the kernel (write(2)); fdatasync is NOT required per call.
    Result<void> flush(const Profile& profile);
    /// Final flush plus an END chunk (profile.info.end, final loss counters, `ending` text such as
    /// "target exited", "duration", "signal"), then fsync and close. A file without END replays as
    /// cut short.
    Result<void> finish(const Profile& profile, std::string_view ending);
    std::uint64_t bytes_written() const;
    ~RecordingWriter();

    RecordingWriter(const RecordingWriter&) = delete;
    RecordingWriter& operator=(const RecordingWriter&) = delete;

private:
    RecordingWriter(UniqueFd fd, std::string path);
    Result<void> encode_new(const Profile& profile, std::string& out);
    struct EventWindow;
    // One encoder per chunk type, in the order encode_new writes them (docs/recording-format.md).
    Result<void> encode_meta(const Profile& p, std::string& out);
    Result<void> encode_strings(const Profile& p, std::string& out);
    Result<void> encode_frames(const Profile& p, std::string& out);
    Result<void> encode_stacks(const Profile& p, std::string& out);
    Result<void> encode_threads(const EventWindow& ev, std::string& out);
    Result<void> encode_thread_names(const Profile& p, std::string& out);
    Result<void> encode_processes(const Profile& p, std::string& out);
    Result<void> encode_samples(const Profile& p, const EventWindow& ev, std::string& out);
    Result<void> encode_tasks(const Profile& p, std::string& out);
    Result<void> encode_task_snapshots(const Profile& p, std::string& out);
    Result<void> encode_selector_waits(const EventWindow& ev, std::string& out);
    Result<void> encode_loss(const Profile& p, std::string& out);
    Result<void> write_all(const std::string& bytes);

    UniqueFd fd_;
    std::string path_;
    std::uint64_t bytes_ = 0;
    bool finished_ = false;
    std::optional<Error> failure_;  // set after a failure: every later call fails the same way

    bool info_written_ = false;
    ProfileInfo info_;  // as last written (end excluded)
    std::size_t strings_ = 0, frames_ = 0, stacks_ = 0, samples_ = 0, waits_ = 0, tasks_ = 0, snapshots_ = 0;
    std::unordered_map<Tid, std::uint32_t> thread_index_;
    std::map<Tid, std::string> names_;
    std::map<Pid, ProcessRecord> processes_;
    std::map<Tid, Pid> thread_processes_;
    LossCounters lost_;
};

struct ReadResult {
    Profile profile;
    bool complete = false;          // END chunk seen
    std::string ending;             // from END
    std::uint64_t chunks = 0;
    std::uint64_t bytes_total = 0;
    std::uint64_t bytes_unread = 0; // damaged or cut tail not used
    std::string warning;            // one line, empty if the file is whole: e.g. "recording cut short: the last 1234 bytes (an incomplete chunk) were not readable; it replays up to 12.3 s"
};

/// Reads a whole recording. Errors (BadInput, one line): empty file, not a loopspy recording
/// (bad magic), a future MAJOR version ("recording format 2.x is newer than this loopspy (reads 1.x)"),
/// damage before any sample-bearing data. Damage later (bad checksum, truncated chunk, absurd length
/// or count) ends reading at the last sound chunk with `warning` set — never a crash, a hang, or an
/// allocation of an absurd size (bound every length by the bytes actually left in the file and a
/// hard cap, e.g. 64 MiB uncompressed per chunk).
/// read_recording prefixes its errors with the path ("x.lspy: not a loopspy recording").
Result<ReadResult> read_recording(const std::string& path);
Result<ReadResult> read_recording_bytes(std::span<const std::byte> bytes);  // same, from memory (fuzzer, tests)

}  // namespace loopspy
