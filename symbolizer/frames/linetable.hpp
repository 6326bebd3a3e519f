// Decoder for the CPython 3.11+ location table (co_linetable), which maps bytecode offsets to
// source lines. The format is the one described in CPython's InternalDocs/locations.md
// (Objects/locations.md before 3.14) and is the same for 3.11, 3.12, 3.13, 3.14 and 3.15.
//
// A table is a sequence of entries. Each entry covers 1..8 code units (2 bytes each) and starts
// with a byte that has bit 7 set: bits 3..6 are the entry's code, bits 0..2 its length - 1.
// The remaining bytes of an entry have bit 7 clear:
//   code 0..9   short form: 1 column byte, line unchanged
//   code 10..12 one-line form: 2 column bytes, line += code - 10
//   code 13     no columns: svarint line delta
//   code 14     long form: svarint line delta, varint end-line delta, varint start and end column
//   code 15     no location: no bytes; the instructions have no line (reported as -1), and the
//               running line is left as it is for the next entry
// varint: 6-bit chunks, least significant first, bit 6 set on all but the last chunk.
// svarint: a varint v meaning -(v >> 1) if v & 1, else v >> 1.
// The running line starts at co_firstlineno.
//
// Older versions have simpler tables, decoded into the same ranges:
//   3.8, 3.9 co_lnotab: (address increment: unsigned byte, line increment: signed byte) pairs; a
//            pair moves the address, then the line; the line of an offset is the line reached
//            by the pairs whose running address is <= it (PyCode_Addr2Line). The table does not
//            say where the code ends: the caller gives co_code's length.
//   3.10     co_linetable: (length: unsigned byte, line increment: signed byte) pairs, one per
//            range, in order; a line increment of -128 means the range has no line (-1) and
//            leaves the running line as it is.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace loopspy {

/// Byte offsets into co_code, [start, end), all with the same line; line -1 means "no line".
struct LineRange {
    std::uint32_t start{};
    std::uint32_t end{};
    std::int32_t line{};
    friend bool operator==(const LineRange&, const LineRange&) = default;
};

/// Which table a code object carries.
enum class LineTableFormat : std::uint8_t {
    Locations = 0,  // 3.11+ co_linetable
    Lnotab = 1,     // 3.8, 3.9 co_lnotab
    Pairs310 = 2,   // 3.10 co_linetable
};

class LineTable {
public:
    /// Decodes a whole co_linetable. Never reads outside `table`, always terminates and never
    /// throws on bad input: a malformed table yields the ranges decoded before the damage and
    /// sets truncated(). Consecutive entries with the same line are merged into one range (as
    /// co_lines() does since 3.12; 3.11's co_lines() yields one triple per entry).
    static LineTable decode(std::span<const std::uint8_t> table, int firstlineno);

    /// Decodes a table of `format`; `code_bytes` (co_code's length) closes a co_lnotab's last
    /// range and is otherwise unused.
    static LineTable decode(LineTableFormat format, std::span<const std::uint8_t> table, int firstlineno,
                            std::uint32_t code_bytes);

    /// The line of the instruction at `byte_offset` (2 * the instruction index, e.g. the frame's
    /// lasti * 2), as PyCode_Addr2Line reports it: -1 if the instruction has no line or the
    /// offset lies outside the table. (PyCode_Addr2Line gives co_firstlineno for a negative
    /// offset, i.e. a frame that has not started; callers handle that before calling this.)
    int line_for_offset(std::uint32_t byte_offset) const;

    /// Sorted, contiguous from 0, non-empty ranges.
    const std::vector<LineRange>& ranges() const { return ranges_; }

    /// True if the table was malformed (the ranges stop where decoding stopped).
    bool truncated() const { return truncated_; }

    int firstlineno() const { return firstlineno_; }

    /// Bytes of bytecode the table covers (the end of the last range).
    std::uint32_t code_bytes() const { return ranges_.empty() ? 0 : ranges_.back().end; }

private:
    static LineTable decode_lnotab(std::span<const std::uint8_t> table, int firstlineno, std::uint32_t code_bytes);
    static LineTable decode_pairs310(std::span<const std::uint8_t> table, int firstlineno);
    void append(std::uint32_t start, std::uint32_t end, std::int32_t line);

    std::vector<LineRange> ranges_;
    int firstlineno_{};
    bool truncated_{false};
};

}  // namespace loopspy
