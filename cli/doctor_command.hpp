// `loopspy doctor`: what this machine gives loopspy, a line per requirement, and whether it can
// record.
#pragma once

#include "core/result.hpp"

namespace loopspy {

/// Prints the table to stdout; 0 when loopspy can record here, 1 when a requirement is missing.
Result<int> run_doctor();

}  // namespace loopspy
