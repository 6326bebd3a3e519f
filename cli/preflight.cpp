#include "cli/preflight.hpp"

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/capabilities.hpp"

namespace loopspy {

Result<void> check_privileges() {
    // When the kernel cannot say, it decides later.
    auto has = [](int cap) { return have_capability(cap).value_or(true); };
    bool admin = has(kCapSysAdmin);
    std::vector<std::string> missing;
    if (!admin && !has(kCapBpf)) missing.push_back("CAP_BPF");
    if (!admin && !has(kCapPerfmon)) missing.push_back("CAP_PERFMON");
    if (!has(kCapSysPtrace)) missing.push_back("CAP_SYS_PTRACE");
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
