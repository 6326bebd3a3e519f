// Decoding a CPython str object (PEP 393 representation) read from another process into UTF-8.
//
// Every str starts with PyASCIIObject: the object header, then `length` (code points), `hash`
// and a 32-bit `state` word of bit fields (interned, kind, compact, ascii, ...). A compact
// string keeps its characters in the same allocation:
//   - compact ASCII (compact = 1, ascii = 1, kind = 1): the characters follow PyASCIIObject;
//   - other compact strings: the characters (1, 2 or 4 bytes each, by kind) follow
//     PyCompactUnicodeObject (PyASCIIObject + utf8_length + utf8 [+ wstr_length in 3.11]).
// Non-compact ("legacy") strings keep them behind a pointer; they are instances of str
// subclasses and never code names, so they are reported as errors rather than followed.
// All strings have a NUL after the characters; it is not needed here.
// Only the bits named in the layout are read: the rest of `state` is padding whose content is
// undefined (real objects do carry garbage there).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "core/result.hpp"
#include "symbolizer/cpython/layout.hpp"

namespace loopspy {

/// Where the fields of a str object are, for one CPython build. Bit numbers count from the least
/// significant bit of the little-endian 32-bit state word.
struct UnicodeLayout {
    std::uint64_t length_offset;        // Py_ssize_t length
    std::uint64_t state_offset;         // the state bit fields (4 bytes)
    std::uint64_t ascii_object_size;    // sizeof(PyASCIIObject): compact ASCII data starts here
    std::uint64_t compact_object_size;  // sizeof(PyCompactUnicodeObject): other compact data
    std::uint8_t kind_shift;            // kind is 3 bits starting at this bit
    std::uint8_t compact_bit;
    std::uint8_t ascii_bit;
};

/// 3.11 (GIL build, x86-64/aarch64 LP64): verified against real objects.
inline constexpr UnicodeLayout kUnicodeLayout311{16, 32, 48, 72, 2, 5, 6};
/// 3.12 and 3.13 (GIL builds): verified against real objects. 3.14's header is unchanged.
inline constexpr UnicodeLayout kUnicodeLayout312{16, 32, 40, 56, 2, 5, 6};

/// The layout for CPython 3.`minor` (3.8 through 3.15), or nullopt for versions not known to
/// use one of the layouts above, and for free-threaded builds (their object header is larger
/// and, from 3.14, `interned` is a whole byte, moving the other bits up by 8).
std::optional<UnicodeLayout> unicode_layout_for(int major, int minor, bool free_threaded = false);

/// Decodes a compact str to UTF-8. `object` holds the bytes of the object read from the target
/// starting at its address, as many as were readable. Fails (ErrorKind::BadInput) if the header
/// or the characters needed are not all inside `object`, if the string is not compact, or if
/// its kind is invalid. At most `max_chars` code points are decoded; a longer string is cut and
/// "…" appended, and only the bytes of those first `max_chars` characters are needed. Code
/// points with no UTF-8 form (lone surrogates, > U+10FFFF, non-ASCII bytes in an ASCII string)
/// become U+FFFD.
Result<std::string> decode_pystring(std::span<const std::byte> object, const UnicodeLayout& layout,
                                    std::size_t max_chars = 1024);

/// How many bytes of a compact string of `length` code points of `kind` (1, 2 or 4) must be
/// read to decode it with decode_pystring(..., max_chars): the header plus the characters
/// (not the trailing NUL). `ascii` selects the compact-ASCII form (data after PyASCIIObject).
std::uint64_t pystring_bytes_needed(const UnicodeLayout& layout, std::uint64_t length, unsigned kind,
                                    bool ascii, std::size_t max_chars = 1024);

/// The same, read off a prefix of the object that holds at least its header (state_offset + 4
/// bytes, e.g. compact_object_size bytes): lets a caller that read a bounded prefix and got an
/// error from decode_pystring do one second read of the right size. Fails if the header is not
/// inside `prefix`, the string is not compact or its kind is invalid.
Result<std::uint64_t> pystring_read_size(std::span<const std::byte> prefix, const UnicodeLayout& layout,
                                         std::size_t max_chars = 1024);

/// Where a str object's fields are in this version (from its layout table).
UnicodeLayout unicode_layout_of(const PythonLayout& layout);

}  // namespace loopspy
