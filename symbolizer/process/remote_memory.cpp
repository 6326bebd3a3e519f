#include "symbolizer/process/remote_memory.hpp"

#include <sys/uio.h>

#include <cstring>

namespace loopspy {

const std::byte* RemoteMemory::page(std::uint64_t page) const {
    auto it = pages_.find(page);
    if (it != pages_.end()) return it->second ? it->second->bytes.get() + (page - it->second->first) : nullptr;
    if (pages_.size() >= kMaxCachedPages) return nullptr;
    // Objects that live together are read together: a miss reads the pages after it too, in one
    // call, up to the first unreadable one or one already cached.
    std::size_t want = 1;
    while (want < pages_per_read_ && !pages_.count(page + want * kPage)) ++want;
    auto block = std::make_shared<Block>(page, want * kPage);
    iovec local{block->bytes.get(), block->size};
    iovec remote{reinterpret_cast<void*>(page), block->size};
    ++reads_;
    ssize_t n = ::process_vm_readv(pid_.value, &local, 1, &remote, 1, 0);
    std::size_t got = n > 0 ? static_cast<std::size_t>(n) / kPage : 0;
    if (got == 0) {
        pages_.emplace(page, nullptr);
        return nullptr;
    }
    for (std::size_t i = 0; i < got; ++i) pages_.emplace(page + i * kPage, block);
    return block->bytes.get();
}

bool RemoteMemory::read(RemoteAddr addr, std::span<std::byte> out) const {
    if (out.empty()) return true;
    if (out.size() > kMaxRead || addr.value == 0) return false;
    if (!caching_) return read_uncached(addr, out);
    std::uint64_t a = addr.value;
    std::size_t done = 0;
    while (done < out.size()) {
        std::uint64_t base = a - a % kPage;
        const std::byte* p = page(base);
        if (!p) return false;
        std::size_t n = std::min<std::size_t>(out.size() - done, kPage - (a - base));
        std::memcpy(out.data() + done, p + (a - base), n);
        done += n;
        a += n;
    }
    return true;
}

bool RemoteMemory::read_uncached(RemoteAddr addr, std::span<std::byte> out) const {
    iovec local{out.data(), out.size()};
    iovec remote{reinterpret_cast<void*>(addr.value), out.size()};
    ++reads_;
    ssize_t n = ::process_vm_readv(pid_.value, &local, 1, &remote, 1, 0);
    return n == static_cast<ssize_t>(out.size());
}

std::vector<std::byte> RemoteMemory::read_prefix(RemoteAddr addr, std::size_t max) const {
    std::vector<std::byte> out;
    if (addr.value == 0 || max == 0) return out;
    if (max > kMaxRead) max = kMaxRead;
    if (caching_) {
        // Page by page from the cache, up to the first unreadable one.
        out.resize(max);
        std::size_t done = 0;
        std::uint64_t a = addr.value;
        while (done < max) {
            std::uint64_t base = a - a % kPage;
            const std::byte* p = page(base);
            if (!p) break;
            std::size_t n = std::min<std::size_t>(max - done, kPage - (a - base));
            std::memcpy(out.data() + done, p + (a - base), n);
            done += n;
            a += n;
        }
        out.resize(done);
        return out;
    }
    out.resize(max);
    // process_vm_readv stops at the first unreadable page when the remote iovec spans several;
    // split the remote range at page boundaries so a string near a page end is still read.
    constexpr std::uint64_t kPage = 4096;
    std::vector<iovec> remote;
    std::uint64_t a = addr.value;
    std::uint64_t left = max;
    while (left > 0 && remote.size() < 1024) {
        std::uint64_t chunk = std::min<std::uint64_t>(left, kPage - (a % kPage));
        remote.push_back(iovec{reinterpret_cast<void*>(a), chunk});
        a += chunk;
        left -= chunk;
    }
    iovec local{out.data(), max};
    ++reads_;
    ssize_t n = ::process_vm_readv(pid_.value, &local, 1, remote.data(), remote.size(), 0);
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
}

}  // namespace loopspy
