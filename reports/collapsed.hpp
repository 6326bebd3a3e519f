// Collapsed stacks: the one-line-per-stack text format understood by most flame graph tools.
//
//   thread MainThread (1234);main (app.py:10);handler (app.py:42) 1500
//
// Each line is the frames of one distinct stack, outermost first, joined with ';', then one
// space and the total weight of that stack in integer microseconds.
//
// Frame escaping (escape_collapsed_frame), applied to every frame before it is written:
//   - invalid UTF-8 is replaced with U+FFFD (one per maximal invalid subsequence);
//   - each ';' becomes ',';
//   - each control byte (< 0x20, e.g. '\n', '\r', '\t', and 0x7f) becomes one space;
//   - an empty frame becomes "<empty>".
// So no frame contains ';' or a line break, and since every line ends with " WEIGHT" a reader
// takes the last space-separated token as the weight (a frame may itself end in " 123").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "reports/stacks.hpp"

namespace loopspy {

// Makes one frame safe for the collapsed line format (rules above).
std::string escape_collapsed_frame(std::string_view frame);

// Renders stacks as collapsed lines. Identical stacks (after escaping) are merged by summing
// their weights; stacks whose total weight is zero, and stacks without frames, are dropped.
// Lines are sorted by the byte order of their stack text, so the output does not depend on
// the input order. Every line ends with '\n'; no stacks gives an empty string.
std::string render_collapsed(const std::vector<WeightedStack>& stacks);

struct CollapsedLine {
    std::vector<std::string> frames;
    std::uint64_t weight = 0;
};

// Parses collapsed text (as written by render_collapsed). Accepts '\n' or "\r\n" line ends and
// skips empty lines. A line without a space, with a weight that is not a non-negative decimal
// integer fitting in 64 bits, with an empty stack, or with an empty frame (";;", leading or
// trailing ';') is an ErrorKind::BadInput error naming the line number. Lines are returned in
// input order, not merged.
Result<std::vector<CollapsedLine>> parse_collapsed(std::string_view text);

}  // namespace loopspy
