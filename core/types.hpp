// Types that say what a number is. Every address, id and duration that crosses a module
// boundary has one of these, so a tid is never passed where a pid is expected.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <functional>

namespace loopspy {

template <typename Tag, typename Rep>
struct Strong {
    Rep value{};
    constexpr Strong() = default;
    constexpr explicit Strong(Rep v) : value(v) {}
    constexpr auto operator<=>(const Strong&) const = default;
};

struct PidTag {};
struct TidTag {};
/// A process id (the kernel's tgid).
using Pid = Strong<PidTag, std::int32_t>;
/// A thread id (the kernel's pid of a task; Python's native_thread_id).
using Tid = Strong<TidTag, std::int32_t>;

/// An address in the target's address space.
struct RemoteAddrTag {};
using RemoteAddr = Strong<RemoteAddrTag, std::uint64_t>;

/// The address of a PyCodeObject in the target.
struct CodeAddrTag {};
using CodeAddr = Strong<CodeAddrTag, std::uint64_t>;

/// A duration or a CLOCK_MONOTONIC timestamp, in nanoseconds.
struct Nanoseconds {
    std::int64_t value{};
    constexpr Nanoseconds() = default;
    constexpr explicit Nanoseconds(std::int64_t v) : value(v) {}
    constexpr auto operator<=>(const Nanoseconds&) const = default;
    constexpr Nanoseconds operator+(Nanoseconds o) const { return Nanoseconds{value + o.value}; }
    constexpr Nanoseconds operator-(Nanoseconds o) const { return Nanoseconds{value - o.value}; }
    constexpr Nanoseconds& operator+=(Nanoseconds o) { value += o.value; return *this; }
    constexpr Nanoseconds& operator-=(Nanoseconds o) { value -= o.value; return *this; }
    constexpr double ms() const { return static_cast<double>(value) / 1e6; }
    constexpr double seconds() const { return static_cast<double>(value) / 1e9; }
    constexpr std::int64_t us() const { return value / 1000; }
};

constexpr Nanoseconds milliseconds(std::int64_t ms) { return Nanoseconds{ms * 1'000'000}; }

/// A CPython version as PY_VERSION_HEX (0x030C01F0 is 3.12.1 final).
struct PythonVersion {
    std::uint32_t hex{};
    constexpr int major() const { return static_cast<int>(hex >> 24); }
    constexpr int minor() const { return static_cast<int>((hex >> 16) & 0xff); }
    constexpr int micro() const { return static_cast<int>((hex >> 8) & 0xff); }
    constexpr auto operator<=>(const PythonVersion&) const = default;
    /// As Python writes it: "3.12.1", "3.14.0rc2", "3.15.0a1".
    std::string text() const {
        std::string s = std::to_string(major()) + "." + std::to_string(minor()) + "." + std::to_string(micro());
        const unsigned level = (hex >> 4) & 0xf, serial = hex & 0xf;
        if (level == 0xa) s += "a" + std::to_string(serial);
        if (level == 0xb) s += "b" + std::to_string(serial);
        if (level == 0xc) s += "rc" + std::to_string(serial);
        return s;
    }
};

}  // namespace loopspy

template <typename Tag, typename Rep>
struct std::hash<loopspy::Strong<Tag, Rep>> {
    std::size_t operator()(const loopspy::Strong<Tag, Rep>& s) const noexcept {
        return std::hash<Rep>{}(s.value);
    }
};
