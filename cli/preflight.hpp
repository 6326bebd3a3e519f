// Checks made before anything is loaded, so a missing capability or kernel feature is one clear
// line instead of a BPF error later.
#pragma once

#include "core/result.hpp"

namespace loopspy {

/// The process may load BPF programs, open perf events and read another process's memory.
Result<void> check_privileges();
/// The kernel exposes BTF (needed for CO-RE). $LOOPSPY_SYSFS_BTF overrides the path checked.
Result<void> check_btf();

}  // namespace loopspy
