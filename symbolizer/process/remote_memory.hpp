// Bounded reads of another process's memory with process_vm_readv. Every read may fail (the
// target runs on, memory is freed); callers treat a failure as "unknown", never as fatal.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_map>
#include <span>
#include <vector>

#include "core/types.hpp"

namespace loopspy {

class RemoteMemory {
public:
    /// Largest single read; anything asking for more is refused.
    static constexpr std::size_t kMaxRead = 1 << 20;

    explicit RemoteMemory(Pid pid) : pid_(pid) {}
    Pid pid() const { return pid_; }

    /// Reads exactly out.size() bytes at addr; false on any failure (partial reads count as failure).
    bool read(RemoteAddr addr, std::span<std::byte> out) const;
    /// Reads up to `max` bytes at addr, stopping early at an unreadable page; returns what was read.
    std::vector<std::byte> read_prefix(RemoteAddr addr, std::size_t max) const;

    template <typename T>
    std::optional<T> read_value(RemoteAddr addr) const {
        T v{};
        if (!read(addr, std::as_writable_bytes(std::span<T, 1>(&v, 1)))) return std::nullopt;
        return v;
    }
    std::optional<std::uint64_t> read_u64(RemoteAddr addr) const { return read_value<std::uint64_t>(addr); }

    /// Number of process_vm_readv calls made (for the profiler's own cost accounting).
    std::uint64_t reads() const { return reads_; }

    /// While one lives, reads are served from whole pages read once: walking thousands of small
    /// objects that share pages (a task snapshot) costs a read per page, not per object, and sees
    /// each page as of one instant. Only for short, bounded walks: nothing read is ever refreshed.
    class PageCacheScope {
    public:
        /// A miss reads up to `pages_per_read` consecutive pages in one call (at least 1).
        PageCacheScope(const RemoteMemory& m, std::size_t pages_per_read) : m_(m) {
            m_.caching_ = true;
            m_.pages_per_read_ = std::max<std::size_t>(1, pages_per_read);
        }
        ~PageCacheScope() {
            m_.caching_ = false;
            m_.pages_.clear();
        }
        PageCacheScope(const PageCacheScope&) = delete;
        PageCacheScope& operator=(const PageCacheScope&) = delete;

    private:
        const RemoteMemory& m_;
    };

private:
    static constexpr std::uint64_t kPage = 4096;
    static constexpr std::size_t kMaxCachedPages = 64 * 1024;  // 256 MiB: a walk never gets near it
    /// Consecutive pages read in one call.
    struct Block {
        Block(std::uint64_t first, std::size_t size) : first(first), size(size), bytes(new std::byte[size]) {}
        std::uint64_t first;
        std::size_t size;
        std::unique_ptr<std::byte[]> bytes;  // not zeroed: filled by the read
    };
    bool read_uncached(RemoteAddr addr, std::span<std::byte> out) const;
    /// The cached page at `page` (page-aligned), reading it first; null if unreadable.
    const std::byte* page(std::uint64_t page) const;

    Pid pid_;
    mutable std::uint64_t reads_ = 0;
    mutable std::size_t pages_per_read_ = 1;
    mutable bool caching_ = false;
    mutable std::unordered_map<std::uint64_t, std::shared_ptr<Block>> pages_;  // page -> its block; null: unreadable
};

/// Reads a plain value out of a byte buffer at `offset`, or nullopt if it does not fit.
template <typename T>
std::optional<T> load_at(std::span<const std::byte> bytes, std::uint64_t offset) {
    if (offset > bytes.size() || bytes.size() - offset < sizeof(T)) return std::nullopt;
    T v;
    std::memcpy(&v, bytes.data() + offset, sizeof(T));
    return v;
}

}  // namespace loopspy
