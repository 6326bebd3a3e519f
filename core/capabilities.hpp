// What the running process may do: its effective capabilities.
#pragma once

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <optional>

namespace loopspy {

inline constexpr int kCapSysPtrace = 19;
inline constexpr int kCapSysAdmin = 21;
inline constexpr int kCapPerfmon = 38;
inline constexpr int kCapBpf = 39;

/// Whether loopspy holds capability `cap` (CAP_* number) in its effective set; nullopt when the
/// kernel cannot say.
inline std::optional<bool> have_capability(int cap) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &header, data) != 0) return std::nullopt;
    return ((data[cap / 32].effective >> (cap % 32)) & 1u) != 0;
}

}  // namespace loopspy
