#include "symbolizer/remote_memory.hpp"

#include <sys/uio.h>

namespace loopspy {

bool RemoteMemory::read(RemoteAddr addr, std::span<std::byte> out) const {
    if (out.empty()) return true;
    if (out.size() > kMaxRead || addr.value == 0) return false;
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
