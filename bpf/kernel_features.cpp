#include "bpf/kernel_features.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace loopspy {

KernelBtf::KernelBtf() : vmlinux_(feature_disabled("btf") ? nullptr : btf__load_vmlinux_btf()) {
    if (libbpf_get_error(vmlinux_)) vmlinux_ = nullptr;
}
KernelBtf::~KernelBtf() { btf__free(vmlinux_); }

bool KernelBtf::has(const char* name, int kind) const {
    return vmlinux_ && btf__find_by_name_kind(vmlinux_, name, kind) >= 0;
}
bool KernelBtf::has_tracepoint(const char* name) const {
    return has((std::string("btf_trace_") + name).c_str(), BTF_KIND_TYPEDEF);
}
bool KernelBtf::has_function(const char* name) const { return has(name, BTF_KIND_FUNC); }

bool KernelBtf::can_fentry(const char* function) const {
    if (!vmlinux_) return false;
    const int id = btf__find_by_name_kind(vmlinux_, function, BTF_KIND_FUNC);
    if (id < 0) return false;
    const bpf_insn return_zero[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
    };
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
                .attach_btf_id = static_cast<__u32>(id));
    const int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "loopspy_probe", "GPL", return_zero, 2, &opts);
    if (fd < 0) return false;
    ::close(fd);
    return true;
}

bool feature_disabled(const std::string& key) {
    const char* env = std::getenv("LOOPSPY_DISABLE_FEATURES");
    if (!env) return false;
    std::stringstream list(env);
    for (std::string item; std::getline(list, item, ',');) {
        if (item == key) return true;
    }
    return false;
}

namespace {

bool cpu_clock_opens() {
    perf_event_attr attr{};
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof(attr);
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.sample_freq = 1;
    attr.freq = 1;
    attr.disabled = 1;
    const int fd = static_cast<int>(::syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));
    if (fd < 0) return false;
    ::close(fd);
    return true;
}

}  // namespace

std::vector<KernelFeature> probe_kernel_features() {
    std::vector<KernelFeature> out;
    auto add = [&](KernelFeature f, bool probed) {
        f.disabled = feature_disabled(f.key);
        f.available = probed && !f.disabled;
        if (f.disabled) f.detail = "disabled by LOOPSPY_DISABLE_FEATURES";
        out.push_back(std::move(f));
    };
    const KernelBtf kernel;
    add({"btf", "kernel BTF loaded by libbpf (CO-RE)", "Linux 5.4, CONFIG_DEBUG_INFO_BTF=y", true, false, false,
         kernel.loaded() ? "" : "libbpf could not load the kernel's BTF", "none: loopspy needs it"},
        kernel.loaded());
    add({"ringbuf", "BPF ring buffer", "Linux 5.8", true, false, false, "", "none: every event goes through it"},
        libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1);
    add({"bpf_loop", "bpf_loop helper (the frame walk)", "Linux 5.17", true, false, false, "",
         "none: the frame walk is one bpf_loop"},
        libbpf_probe_bpf_helper(BPF_PROG_TYPE_PERF_EVENT, BPF_FUNC_loop, nullptr) == 1);
    add({"perf_event", "perf_event cpu-clock sampling", "Linux 4.9", true, false, false, "",
         "none: on-CPU samples come from it"},
        cpu_clock_opens());
    add({"tp_btf", "sched_switch, fork, exec through tp_btf", "Linux 5.5", false, false, false, "",
         "raw_tp (the same hooks, arguments read without BTF types)"},
        kernel.has_tracepoint("sched_switch"));
    add({"fentry", "selector waits through fentry/fexit", "Linux 5.5, tracing not locked down", false, false, false,
         "", "the syscall tracepoints (raw_tp sys_enter/sys_exit: every syscall on the machine pays a check)"},
        std::getenv("LOOPSPY_SYSCALL_TRACEPOINTS") == nullptr && kernel.can_fentry("do_epoll_wait") &&
            kernel.has_function("do_sys_poll") && kernel.has_function("core_sys_select"));
    return out;
}

bool feature_available(const std::vector<KernelFeature>& features, const std::string& key) {
    for (const KernelFeature& f : features) {
        if (f.key == key) return f.available;
    }
    return false;
}

Result<void> check_required_features(const std::vector<KernelFeature>& features) {
    for (const KernelFeature& f : features) {
        if (f.required && !f.available) {
            return make_error(ErrorKind::NoBtf, "this kernel lacks the " + f.what + " (" + f.since + ")" +
                                                  (f.detail.empty() ? "" : ": " + f.detail) +
                                                  "; `loopspy doctor` shows what it has");
        }
    }
    return {};
}

std::string render_kernel_features(const std::vector<KernelFeature>& features) {
    std::string out;
    for (const KernelFeature& f : features) {
        char line[512];
        std::snprintf(line, sizeof line, "  %-48s %-4s %s\n", f.what.c_str(), f.available ? "yes" : "no",
                      f.available ? ("(" + f.since + ")").c_str()
                                  : ((f.detail.empty() ? "" : f.detail + "; ") + "without it: " + f.without).c_str());
        out += line;
    }
    return out;
}

}  // namespace loopspy
