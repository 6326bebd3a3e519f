#include "cli/doctor_command.hpp"

#include <bpf/libbpf.h>
#include <sys/utsname.h>

#include <cstdio>
#include <string>

#include "bpf/kernel_features.hpp"
#include "cli/preflight.hpp"

namespace loopspy {

Result<int> run_doctor() {
    utsname u{};
    ::uname(&u);
    std::printf("loopspy doctor: Linux %s, libbpf %s\n", u.release, libbpf_version_string());
    bool can = true;
    auto row = [&](const char* what, const Result<void>& r) {
        std::printf("  %-48s %-4s %s\n", what, r ? "yes" : "no", r ? "" : r.error().message.c_str());
        can = can && r.ok();
    };
    row("privilege (root, or CAP_BPF+PERFMON+SYS_PTRACE)", check_privileges());
    row("kernel BTF file (/sys/kernel/btf/vmlinux)", check_btf());
    const std::vector<KernelFeature> features = probe_kernel_features();
    std::fputs(render_kernel_features(features).c_str(), stdout);
    std::printf("  %-48s %-4s %s\n", "PID namespaces", "yes",
                "(ids read from the task through CO-RE: bpf_get_ns_current_pid_tgid is not needed)");
    const auto required = check_required_features(features);
    can = can && required.ok();
    std::printf("%s\n", can ? "loopspy can record here (the fallbacks above, where a line says no)"
                            : "loopspy cannot record here: see the lines that say no");
    return can ? 0 : 1;
}

}  // namespace loopspy
