// libFuzzer target for the recording reader (scripts/fuzz.sh builds and runs it).
//
// Each input is read twice: as it is, and with its header and every chunk's checksums made
// right, so that mutations get past the checksums into the chunk decoders. Whatever the reader
// accepts must then survive a round trip: written again by RecordingWriter and read back, it is
// the same profile (a reader that accepts something the writer cannot reproduce is a bug).
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "recording/format.hpp"

using namespace loopspy;
namespace rf = loopspy::recording_format;

namespace {

void put32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t get32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
           (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

/// The input with a 1.x header and correct checksums on every chunk that fits.
std::vector<std::uint8_t> with_checksums(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> b(data, data + size);
    if (b.size() < rf::kFileHeaderSize) return b;
    std::memcpy(b.data(), rf::kMagic, sizeof(rf::kMagic));
    b[8] = static_cast<std::uint8_t>(kFormatMajor);
    b[9] = 0;
    std::size_t pos = rf::kFileHeaderSize;
    while (pos + rf::kChunkHeaderSize <= b.size()) {
        std::uint8_t* h = b.data() + pos;
        std::size_t stored = get32(h + 8);
        std::size_t left = b.size() - pos - rf::kChunkHeaderSize;
        if (stored > left) {
            stored = left;  // cut: make the length fit, so the last chunk is read too
            put32(h + 8, static_cast<std::uint32_t>(stored));
        }
        if (!(get32(h + 4) & rf::kChunkZlib)) put32(h + 12, static_cast<std::uint32_t>(stored));
        put32(h + 16, static_cast<std::uint32_t>(crc32(0L, h + rf::kChunkHeaderSize, static_cast<uInt>(stored))));
        put32(h + 20, static_cast<std::uint32_t>(crc32(0L, h, 20)));
        pos += rf::kChunkHeaderSize + stored;
    }
    return b;
}

bool same(const Profile& a, const Profile& b) {
    if (!(a.info == b.info) || !(a.lost == b.lost) || a.string_count() != b.string_count() ||
        a.frame_count() != b.frame_count() || a.stack_count() != b.stack_count() || a.samples() != b.samples() ||
        a.selector_waits() != b.selector_waits() || a.threads() != b.threads() || a.tasks() != b.tasks() ||
        a.task_snapshots() != b.task_snapshots() || a.snapshots_dropped() != b.snapshots_dropped()) {
        return false;
    }
    for (std::size_t i = 0; i < a.string_count(); ++i) {
        if (a.string(static_cast<StringId>(i)) != b.string(static_cast<StringId>(i))) return false;
    }
    for (std::size_t i = 0; i < a.frame_count(); ++i) {
        if (!(a.frame(static_cast<FrameId>(i)) == b.frame(static_cast<FrameId>(i)))) return false;
    }
    for (std::size_t i = 0; i < a.stack_count(); ++i) {
        auto x = a.stack(static_cast<StackId>(i)), y = b.stack(static_cast<StackId>(i));
        if (x.size() != y.size() || !std::equal(x.begin(), x.end(), y.begin())) return false;
    }
    return true;
}

/// A path the writer can open that lives in memory.
const std::string& scratch_path() {
    static const std::string path = [] {
        int fd = ::memfd_create("fuzz-recording", 0);
        if (fd < 0) std::abort();
        return "/proc/self/fd/" + std::to_string(fd);
    }();
    return path;
}

void check(const std::uint8_t* data, std::size_t size) {
    auto r = read_recording_bytes(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
    if (!r) {
        if (r.error().kind != ErrorKind::BadInput || r.error().message.empty()) std::abort();
        return;
    }
    const ReadResult& rr = *r;
    if (rr.bytes_unread > rr.bytes_total || rr.bytes_total != size) std::abort();
    if (rr.warning.find('\n') != std::string::npos) std::abort();
    if (rr.warning.empty() != (rr.complete && rr.bytes_unread == 0)) std::abort();
    const Profile& p = rr.profile;
    for (const auto& s : p.samples()) {
        if (s.stack >= p.stack_count()) std::abort();
        for (FrameId f : p.stack(s.stack)) {
            if (f >= p.frame_count()) std::abort();
        }
    }
    // Round trip.
    auto w = RecordingWriter::create(scratch_path(), /*force=*/true);  // a memfd: /proc/self/fd/N is a link
    if (!w) std::abort();
    if (!(*w)->flush(p) || !(*w)->finish(p, rr.ending)) std::abort();
    auto again = read_recording(scratch_path());
    if (!again || !again->complete || !again->warning.empty() || again->ending != rr.ending ||
        !same(again->profile, p)) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    check(data, size);
    std::vector<std::uint8_t> fixed = with_checksums(data, size);
    check(fixed.data(), fixed.size());
    return 0;
}
