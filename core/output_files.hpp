// Writing output files safely on a shared host: whole or not at all (a temporary made with
// mkstemp beside the file, then renamed over it), never through a symbolic link loopspy did not
// make unless the user says --force, into a device (/dev/null) in place, or to stdout for "-".
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"
#include "core/unique_fd.hpp"

namespace loopspy {

/// The path that means stdout.
inline constexpr std::string_view kStdoutPath = "-";

/// Checks, before anything is recorded, that `path` can be written: its folder exists and takes
/// a new file, it is not a directory, and not a symbolic link (unless `force`). BadInput for
/// what the user named wrong, Io for a folder that refuses.
Result<void> check_output_path(const std::string& path, bool force);

/// Writes `contents` to `path` as check_output_path allows it.
Result<void> write_file_atomically(const std::string& path, std::string_view contents, bool force = false);

/// Opens `path` for a file written as it grows (the recording): created or truncated, never
/// through a symbolic link unless `force`, and only a regular file.
Result<UniqueFd> open_growing_file(const std::string& path, bool force);

}  // namespace loopspy
