// The recording format's framing, shared by the writer and the reader: limits, little-endian
// and varint coding, chunk names, checksums, and a chunk's header (docs/recording-format.md).
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include "recording/format.hpp"

namespace loopspy::recording_format::detail {

using namespace recording_format;


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
inline void put_le16(std::string& out, std::uint16_t v) {
    out.push_back(static_cast<char>(v & 0xff));
    out.push_back(static_cast<char>(v >> 8));
}
inline void put_le32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline std::uint16_t get_le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
inline std::uint32_t get_le32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
           (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

// ---- varints: LEB128, zig-zag for signed values; differences wrap (two's complement) ----
inline std::uint64_t zigzag(std::int64_t v) {
    auto u = static_cast<std::uint64_t>(v);
    return (u << 1) ^ (std::uint64_t{0} - (u >> 63));
}
inline std::int64_t unzigzag(std::uint64_t z) { return static_cast<std::int64_t>((z >> 1) ^ (std::uint64_t{0} - (z & 1))); }
inline std::int64_t wrap_sub(std::int64_t a, std::int64_t b) {
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) - static_cast<std::uint64_t>(b));
}
inline std::int64_t wrap_add(std::int64_t a, std::int64_t b) {
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

inline const char* chunk_name(std::uint32_t type) {
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
        case kChunkProcesses: return "processes";
        case kChunkThreadProcesses: return "thread processes";
        case kChunkSampleTasks: return "sample tasks";
        case kChunkSampleGilHolders: return "sample GIL holders";
        default: return nullptr;
    }
}

inline std::uint32_t crc_of(const std::uint8_t* p, std::size_t n) {
    return static_cast<std::uint32_t>(crc32(0L, p, static_cast<uInt>(n)));
}

/// Appends one chunk: compressed when that makes it smaller.
inline Result<void> append_chunk(std::string& out, std::uint32_t type, std::string_view raw) {
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

inline void put_loss(Out& o, const LossCounters& l) {
    o.u(l.ringbuf_full);
    o.u(l.read_failed);
    o.u(l.no_thread_state);
    o.u(l.off_cpu);
    o.u(l.selector);
    o.u(l.undelivered);
    o.u(l.native_thread);
    o.u(l.target_cpu_ns);
}

inline LossCounters get_loss(In& in) {
    LossCounters l;
    l.ringbuf_full = in.u();
    l.read_failed = in.u();
    l.no_thread_state = in.u();
    l.off_cpu = in.u();
    l.selector = in.u();
    if (in.left() > 0) {  // 1.3
        l.undelivered = in.u();
        l.native_thread = in.u();
        l.target_cpu_ns = in.u();
    }
    return l;
}

inline std::string seconds_text(Nanoseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f", d.seconds());
    return buf;
}


}  // namespace loopspy::recording_format::detail
