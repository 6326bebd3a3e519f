// What this kernel gives loopspy, probed once: each BPF feature it uses, whether it is there,
// and what loopspy does without it (a fallback, or a clear refusal). `loopspy doctor` prints the
// table; `record` and `top` refuse at start, one line, when a required one is missing.
// LOOPSPY_DISABLE_FEATURES=ringbuf,fentry,... forces features off (for tests, and to try a
// fallback by hand).
#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"

struct btf;

namespace loopspy {

/// The kernel's BTF and the attach points it describes.
class KernelBtf {
public:
    KernelBtf();
    ~KernelBtf();
    KernelBtf(const KernelBtf&) = delete;
    KernelBtf& operator=(const KernelBtf&) = delete;
    bool loaded() const { return vmlinux_ != nullptr; }
    bool has_tracepoint(const char* name) const;  // a tp_btf attach point
    bool has_function(const char* name) const;
    /// Whether an fentry program on `function` loads: BTF may describe a function that a kernel
    /// still refuses to trace (EPERM where tracing programs are locked down).
    bool can_fentry(const char* function) const;

private:
    bool has(const char* name, int kind) const;
    btf* vmlinux_ = nullptr;
};

struct KernelFeature {
    std::string key;          // for LOOPSPY_DISABLE_FEATURES: btf, ringbuf, bpf_loop, perf_event, tp_btf, fentry
    std::string what;         // "BPF ring buffer"
    std::string since;        // "Linux 5.8"
    bool required = false;    // without it loopspy refuses to record
    bool available = false;
    bool disabled = false;    // forced off by LOOPSPY_DISABLE_FEATURES
    std::string detail;       // how it was found, or why it is missing
    std::string without;      // what loopspy does without it
};

/// Every feature, probed now (a few bpf() calls; no program stays loaded).
std::vector<KernelFeature> probe_kernel_features();
/// Whether the feature `key` is available in `features`.
bool feature_available(const std::vector<KernelFeature>& features, const std::string& key);
/// Whether LOOPSPY_DISABLE_FEATURES names `key`.
bool feature_disabled(const std::string& key);
/// The first required feature missing, as the error `record` gives (ErrorKind::NoBtf: the kernel
/// lacks what loopspy needs, exit code 7), or nothing.
Result<void> check_required_features(const std::vector<KernelFeature>& features);
/// The doctor's table, a line per feature and a verdict.
std::string render_kernel_features(const std::vector<KernelFeature>& features);

}  // namespace loopspy
