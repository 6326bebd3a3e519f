// _Py_DebugOffsets: from CPython 3.13 on, _PyRuntime begins with a table that describes where
// the interpreter keeps the fields an out-of-process reader needs. It starts with the cookie
// "xdebugpy", then the version (PY_VERSION_HEX), then a free-threaded flag, then groups of
// uint64 offsets whose order depends on the minor version.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/result.hpp"
#include "symbolizer/cpython/layout.hpp"

namespace loopspy {

struct DebugOffsetsInfo {
    uint64_t version_hex;   // PY_VERSION_HEX of the running interpreter
    bool free_threaded;     // a free-threaded (no-GIL) build: the generated table does not describe it
};

// Parse the bytes read from the start of _PyRuntime. Validates the cookie, that the version is
// 3.13+ and one we know the table layout of, and that every offset used is < 64 KiB; fills the
// fields of `out` that _Py_DebugOffsets carries and leaves the others as they were (the caller
// pre-fills them from python_layout(minor), and `out.minor` must be that minor).
// Errors: BadInput for a missing cookie or a short buffer or an absurd offset,
// UnsupportedPython for a version before 3.13 or newer than the ones known here.
Result<DebugOffsetsInfo> parse_debug_offsets(std::span<const std::byte> bytes, PythonLayout& out);

// How many bytes to read from the start of _PyRuntime: enough for the largest supported version.
std::size_t debug_offsets_read_size();

// The PY_VERSION_HEX carried by the table, or 0 if the bytes do not start with the cookie.
// Lets a caller pick python_layout(minor) before calling parse_debug_offsets.
uint64_t debug_offsets_version_at(std::span<const std::byte> bytes);

}  // namespace loopspy
