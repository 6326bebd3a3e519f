// Text that every output carries safely: names read from a target's memory can hold any bytes.
#pragma once

#include <string>
#include <string_view>

namespace loopspy {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Returns s with every invalid UTF-8 sequence (stray continuation bytes, truncated sequences,
// overlong forms, surrogates, code points above U+10FFFF) replaced by U+FFFD. Valid text,
// including non-ASCII, is returned unchanged.
std::string sanitize_utf8(std::string_view s);

}  // namespace loopspy
