#include "symbolizer/cpython/pystring.hpp"

#include <algorithm>
#include <limits>
#include <string_view>

namespace loopspy {
namespace {

constexpr char32_t kReplacement = 0xFFFD;
constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026

// Little-endian unsigned integer of `n` bytes at `off`; the caller has checked the bounds.
std::uint64_t load_le(std::span<const std::byte> bytes, std::uint64_t off, unsigned n) {
    std::uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) {
        v |= static_cast<std::uint64_t>(std::to_integer<std::uint8_t>(bytes[off + i])) << (8 * i);
    }
    return v;
}

bool fits(std::span<const std::byte> bytes, std::uint64_t off, std::uint64_t n) {
    return off <= bytes.size() && n <= bytes.size() - off;
}

void append_utf8(std::string& out, char32_t cp) {
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = kReplacement;
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

struct Header {
    std::uint64_t length;
    unsigned kind;
    bool ascii;
};

bool layout_valid(const UnicodeLayout& l) {
    return l.kind_shift <= 29 && l.compact_bit < 32 && l.ascii_bit < 32;
}

// Reads length and state and checks that the string is compact with a valid kind.
Result<Header> read_header(std::span<const std::byte> object, const UnicodeLayout& layout) {
    if (!layout_valid(layout)) return make_error(ErrorKind::Internal, "invalid str layout");
    if (!fits(object, layout.length_offset, 8) || !fits(object, layout.state_offset, 4)) {
        return make_error(ErrorKind::BadInput, "str object header not readable");
    }
    const std::uint64_t length = load_le(object, layout.length_offset, 8);
    if (length > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return make_error(ErrorKind::BadInput, "str object has a negative length");
    }
    const auto state = static_cast<std::uint32_t>(load_le(object, layout.state_offset, 4));
    const unsigned kind = (state >> layout.kind_shift) & 0x7u;
    const bool compact = ((state >> layout.compact_bit) & 1u) != 0;
    const bool ascii = ((state >> layout.ascii_bit) & 1u) != 0;
    if (!compact) return make_error(ErrorKind::BadInput, "str object is not compact");
    if (kind != 1 && kind != 2 && kind != 4) {
        return make_error(ErrorKind::BadInput, "str object has an invalid kind");
    }
    if (ascii && kind != 1) return make_error(ErrorKind::BadInput, "ASCII str object with kind != 1");
    return Header{length, kind, ascii};
}

}  // namespace

std::optional<UnicodeLayout> unicode_layout_for(int major, int minor, bool free_threaded) {
    if (major != 3 || free_threaded) return std::nullopt;
    // 3.8 through 3.11 share one (the header still has wstr; layouts_generated.inc agrees).
    if (minor >= 8 && minor <= 11) return kUnicodeLayout311;
    // 3.12 through 3.15 share one layout (checked against layouts_generated.inc and live
    // 3.14/3.15 objects; the GIL build's state word is unchanged up to 3.15).
    if (minor >= 12 && minor <= 15) return kUnicodeLayout312;
    return std::nullopt;
}

std::uint64_t pystring_bytes_needed(const UnicodeLayout& layout, std::uint64_t length, unsigned kind,
                                    bool ascii, std::size_t max_chars) {
    const std::uint64_t chars = std::min<std::uint64_t>(length, max_chars);
    const std::uint64_t data = ascii ? layout.ascii_object_size : layout.compact_object_size;
    const std::uint64_t header = std::max({data, layout.state_offset + 4, layout.length_offset + 8});
    const std::uint64_t width = std::clamp(kind, 1u, 4u);
    constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
    if (chars > (kMax - header) / width) return kMax;  // absurd sizes saturate
    return header + chars * width;
}

Result<std::uint64_t> pystring_read_size(std::span<const std::byte> prefix, const UnicodeLayout& layout,
                                         std::size_t max_chars) {
    LOOPSPY_TRY(Header h, read_header(prefix, layout));
    return pystring_bytes_needed(layout, h.length, h.kind, h.ascii, max_chars);
}

Result<std::string> decode_pystring(std::span<const std::byte> object, const UnicodeLayout& layout,
                                    std::size_t max_chars) {
    LOOPSPY_TRY(Header h, read_header(object, layout));
    const std::uint64_t data = h.ascii ? layout.ascii_object_size : layout.compact_object_size;
    const std::uint64_t chars = std::min<std::uint64_t>(h.length, max_chars);
    if (data > object.size() || chars > (object.size() - data) / h.kind) {
        return make_error(ErrorKind::BadInput, "str object characters not all readable");
    }

    std::string out;
    out.reserve(static_cast<std::size_t>(chars) + (h.length > chars ? kEllipsis.size() : 0));
    for (std::uint64_t i = 0; i < chars; ++i) {
        auto cp = static_cast<char32_t>(load_le(object, data + i * h.kind, h.kind));
        if (h.ascii && cp >= 0x80) cp = kReplacement;
        append_utf8(out, cp);
    }
    if (h.length > chars) out.append(kEllipsis);
    return out;
}

UnicodeLayout unicode_layout_of(const PythonLayout& l) {
    return UnicodeLayout{l.unicode_length, l.unicode_state, l.ascii_object_size, l.compact_unicode_object_size,
                         l.unicode_kind_shift, l.unicode_compact_bit, l.unicode_ascii_bit};
}

}  // namespace loopspy
