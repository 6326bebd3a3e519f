#include "reports/text.hpp"

namespace loopspy {

namespace {

// Length of the well-formed UTF-8 sequence starting at s[i], or, if it is ill-formed, minus the
// length of its maximal invalid prefix (at least 1), following the Unicode well-formedness table.
int utf8_sequence(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char lead = byte(i);
    if (lead < 0x80) return 1;
    int need = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
        need = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        need = 2;
        if (lead == 0xE0) lo = 0xA0;       // no overlong forms
        if (lead == 0xED) hi = 0x9F;       // no surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        need = 3;
        if (lead == 0xF0) lo = 0x90;       // no overlong forms
        if (lead == 0xF4) hi = 0x8F;       // nothing above U+10FFFF
    } else {
        return -1;  // continuation byte, C0, C1 or F5..FF as a lead
    }
    std::size_t k = i + 1;
    for (int n = 0; n < need; ++n, ++k) {
        if (k >= s.size()) return -static_cast<int>(k - i);
        const unsigned char c = byte(k);
        const unsigned char min = n == 0 ? lo : 0x80;
        const unsigned char max = n == 0 ? hi : 0xBF;
        if (c < min || c > max) return -static_cast<int>(k - i);
    }
    return need + 1;
}

}  // namespace

std::string sanitize_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        const int n = utf8_sequence(s, i);
        if (n > 0) {
            out.append(s.substr(i, static_cast<std::size_t>(n)));
            i += static_cast<std::size_t>(n);
        } else {
            out.append(kReplacementChar);
            i += static_cast<std::size_t>(-n);
        }
    }
    return out;
}

}  // namespace loopspy
