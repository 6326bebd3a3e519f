#include "symbolizer/frames/linetable.hpp"

#include <algorithm>
#include <limits>
#include <optional>

namespace loopspy {
namespace {

constexpr unsigned kCodeNoColumns = 13;
constexpr unsigned kCodeLong = 14;
constexpr unsigned kCodeNoLocation = 15;
constexpr unsigned kCodeOneLineFirst = 10;
constexpr std::uint32_t kCodeUnitBytes = 2;

// Reads the bytes after an entry's first byte. Every such byte must have bit 7 clear; a byte
// with bit 7 set would be the start of the next entry, so meeting one (or the end of the table)
// in the middle of an entry means the table is malformed.
class EntryReader {
public:
    EntryReader(std::span<const std::uint8_t> table, std::size_t pos) : table_(table), pos_(pos) {}

    std::size_t pos() const { return pos_; }

    std::optional<std::uint8_t> byte() {
        if (pos_ >= table_.size() || (table_[pos_] & 0x80) != 0) return std::nullopt;
        return table_[pos_++];
    }

    // An unsigned varint. Values that do not fit in 32 bits are rejected (CPython itself keeps
    // them in an unsigned int), which also bounds the number of chunks to 6.
    std::optional<std::uint32_t> varint() {
        std::uint64_t value = 0;
        for (unsigned shift = 0; shift < 36; shift += 6) {
            auto b = byte();
            if (!b) return std::nullopt;
            value |= static_cast<std::uint64_t>(*b & 0x3f) << shift;
            if ((*b & 0x40) == 0) {
                if (value > std::numeric_limits<std::uint32_t>::max()) return std::nullopt;
                return static_cast<std::uint32_t>(value);
            }
        }
        return std::nullopt;
    }

    std::optional<std::int64_t> svarint() {
        auto v = varint();
        if (!v) return std::nullopt;
        const std::int64_t magnitude = static_cast<std::int64_t>(*v >> 1);
        return (*v & 1) ? -magnitude : magnitude;
    }

private:
    std::span<const std::uint8_t> table_;
    std::size_t pos_;
};

}  // namespace

LineTable LineTable::decode(std::span<const std::uint8_t> table, int firstlineno) {
    LineTable out;
    out.firstlineno_ = firstlineno;
    std::int64_t line = firstlineno;  // the running line; 64 bits so deltas cannot overflow it
    std::uint64_t offset = 0;
    std::size_t pos = 0;

    while (pos < table.size()) {
        const std::uint8_t first = table[pos];
        if ((first & 0x80) == 0) {  // not the start of an entry
            out.truncated_ = true;
            break;
        }
        const unsigned code = (first >> 3) & 0x0f;
        const std::uint32_t units = (first & 0x07u) + 1;

        EntryReader reader(table, pos + 1);
        bool ok = true;
        bool has_line = true;
        if (code == kCodeNoLocation) {
            has_line = false;
        } else if (code == kCodeLong) {
            auto delta = reader.svarint();
            ok = delta && reader.varint() && reader.varint() && reader.varint();
            if (ok) line += *delta;
        } else if (code == kCodeNoColumns) {
            auto delta = reader.svarint();
            ok = delta.has_value();
            if (ok) line += *delta;
        } else if (code >= kCodeOneLineFirst) {  // 10..12
            ok = reader.byte() && reader.byte();
            if (ok) line += code - kCodeOneLineFirst;
        } else {  // 0..9, short form
            ok = reader.byte().has_value();
        }
        // Reported lines must be representable and distinct from the "no line" marker.
        if (ok && has_line && (line < 0 || line > std::numeric_limits<std::int32_t>::max())) ok = false;
        const std::uint64_t end = offset + std::uint64_t{units} * kCodeUnitBytes;
        if (end > std::numeric_limits<std::uint32_t>::max()) ok = false;
        if (!ok) {
            out.truncated_ = true;
            break;
        }

        const std::int32_t entry_line = has_line ? static_cast<std::int32_t>(line) : -1;
        if (!out.ranges_.empty() && out.ranges_.back().line == entry_line) {
            out.ranges_.back().end = static_cast<std::uint32_t>(end);
        } else {
            out.ranges_.push_back(LineRange{static_cast<std::uint32_t>(offset),
                                            static_cast<std::uint32_t>(end), entry_line});
        }
        offset = end;
        pos = reader.pos();
    }
    return out;
}

LineTable LineTable::decode(LineTableFormat format, std::span<const std::uint8_t> table, int firstlineno,
                            std::uint32_t code_bytes) {
    switch (format) {
        case LineTableFormat::Lnotab: return decode_lnotab(table, firstlineno, code_bytes);
        case LineTableFormat::Pairs310: return decode_pairs310(table, firstlineno);
        case LineTableFormat::Locations: break;
    }
    return decode(table, firstlineno);
}

void LineTable::append(std::uint32_t start, std::uint32_t end, std::int32_t line) {
    if (end <= start) return;
    if (!ranges_.empty() && ranges_.back().line == line && ranges_.back().end == start) {
        ranges_.back().end = end;
    } else {
        ranges_.push_back(LineRange{start, end, line});
    }
}

LineTable LineTable::decode_lnotab(std::span<const std::uint8_t> table, int firstlineno, std::uint32_t code_bytes) {
    LineTable out;
    out.firstlineno_ = firstlineno;
    // Where each line starts: a pair with no address increment moves the line of the range that
    // starts at the current address.
    std::vector<std::pair<std::uint32_t, std::int64_t>> starts{{0, firstlineno}};
    std::uint64_t addr = 0;
    std::int64_t line = firstlineno;
    for (std::size_t i = 0; i + 1 < table.size(); i += 2) {
        addr += table[i];
        line += static_cast<std::int8_t>(table[i + 1]);
        if (addr >= code_bytes) break;  // past the code: no instruction has that line
        if (line < 0 || line > std::numeric_limits<std::int32_t>::max()) {
            out.truncated_ = true;
            break;
        }
        if (starts.back().first == addr) starts.back().second = line;
        else starts.emplace_back(static_cast<std::uint32_t>(addr), line);
    }
    if (table.size() % 2 != 0) out.truncated_ = true;
    for (std::size_t i = 0; i < starts.size(); ++i) {
        const std::uint32_t end = i + 1 < starts.size() ? starts[i + 1].first : code_bytes;
        out.append(starts[i].first, end, static_cast<std::int32_t>(starts[i].second));
    }
    return out;
}

LineTable LineTable::decode_pairs310(std::span<const std::uint8_t> table, int firstlineno) {
    LineTable out;
    out.firstlineno_ = firstlineno;
    std::uint64_t offset = 0;
    std::int64_t line = firstlineno;
    for (std::size_t i = 0; i + 1 < table.size(); i += 2) {
        const std::uint64_t end = offset + table[i];
        const auto delta = static_cast<std::int8_t>(table[i + 1]);
        std::int32_t range_line = -1;
        if (delta != -128) {
            line += delta;
            if (line < 0 || line > std::numeric_limits<std::int32_t>::max()) {
                out.truncated_ = true;
                break;
            }
            range_line = static_cast<std::int32_t>(line);
        }
        if (end > std::numeric_limits<std::uint32_t>::max()) {
            out.truncated_ = true;
            break;
        }
        out.append(static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(end), range_line);
        offset = end;
    }
    if (table.size() % 2 != 0) out.truncated_ = true;
    return out;
}

int LineTable::line_for_offset(std::uint32_t byte_offset) const {
    // The first range that starts after the offset; the one before it is the candidate.
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), byte_offset,
                               [](std::uint32_t off, const LineRange& r) { return off < r.start; });
    if (it == ranges_.begin()) return -1;
    --it;
    return byte_offset < it->end ? it->line : -1;
}

}  // namespace loopspy
