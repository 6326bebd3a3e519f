// Writing an output file whole or not at all: to a temporary beside it, then renamed.
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"

namespace loopspy {

Result<void> write_file_atomically(const std::string& path, std::string_view contents);

}  // namespace loopspy
