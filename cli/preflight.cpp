#include "cli/preflight.hpp"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace loopspy {
namespace {

bool has_cap(const __user_cap_data_struct data[2], int cap) {
    return (data[cap / 32].effective >> (cap % 32)) & 1u;
}

}  // namespace

Result<void> check_privileges() {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &header, data) != 0) return {};  // cannot tell: let the kernel decide
    constexpr int kSysPtrace = 19, kSysAdmin = 21, kPerfmon = 38, kBpf = 39;
    bool admin = has_cap(data, kSysAdmin);
    std::vector<std::string> missing;
    if (!admin && !has_cap(data, kBpf)) missing.push_back("CAP_BPF");
    if (!admin && !has_cap(data, kPerfmon)) missing.push_back("CAP_PERFMON");
    if (!has_cap(data, kSysPtrace)) missing.push_back("CAP_SYS_PTRACE");
    if (missing.empty()) return {};
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return make_error(ErrorKind::NoPrivilege,
                      "not enough privilege: run as root, or grant CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE (missing: " +
                          list + ")");
}

Result<void> check_btf() {
    const char* path = std::getenv("LOOPSPY_SYSFS_BTF");
    std::string btf = path && *path ? path : "/sys/kernel/btf/vmlinux";
    if (::access(btf.c_str(), R_OK) != 0) {
        return make_error(ErrorKind::NoBtf, "this kernel has no BTF (" + btf +
                                                " is missing): loopspy needs a kernel built with CONFIG_DEBUG_INFO_BTF=y");
    }
    return {};
}

}  // namespace loopspy
