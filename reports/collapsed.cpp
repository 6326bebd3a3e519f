#include "reports/collapsed.hpp"

#include <charconv>
#include <map>

#include "reports/text.hpp"

namespace loopspy {

std::string escape_collapsed_frame(std::string_view frame) {
    if (frame.empty()) return "<empty>";
    // Fast path: printable ASCII without ';' needs no change.
    bool plain = true;
    for (char c : frame) plain = plain && c >= 0x20 && c < 0x7F && c != ';';
    if (plain) return std::string(frame);
    std::string out = sanitize_utf8(frame);
    for (char& c : out) {
        const auto b = static_cast<unsigned char>(c);
        if (c == ';') {
            c = ',';
        } else if (b < 0x20 || b == 0x7F) {
            c = ' ';
        }
    }
    return out;
}

std::string render_collapsed(const std::vector<WeightedStack>& stacks) {
    // std::string compares as unsigned bytes, so the map iterates in byte order.
    std::map<std::string, std::uint64_t> merged;
    std::string key;
    for (const auto& stack : stacks) {
        if (stack.frames.empty() || stack.weight_us == 0) continue;
        key.clear();
        for (std::size_t i = 0; i < stack.frames.size(); ++i) {
            if (i != 0) key.push_back(';');
            key += escape_collapsed_frame(stack.frames[i]);
        }
        merged[key] += stack.weight_us;
    }
    std::string out;
    for (const auto& [text, weight] : merged) {
        if (weight == 0) continue;
        out += text;
        out.push_back(' ');
        out += std::to_string(weight);
        out.push_back('\n');
    }
    return out;
}

Result<std::vector<CollapsedLine>> parse_collapsed(std::string_view text) {
    std::vector<CollapsedLine> lines;
    std::size_t line_no = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) continue;

        auto fail = [&](const std::string& why) {
            return make_error(ErrorKind::BadInput,
                              "collapsed stacks line " + std::to_string(line_no) + ": " + why);
        };
        const std::size_t space = line.rfind(' ');
        if (space == std::string_view::npos) return fail("missing weight (no space before the weight)");
        const std::string_view weight_text = line.substr(space + 1);
        const std::string_view stack_text = line.substr(0, space);
        if (weight_text.empty()) return fail("missing weight after the last space");
        CollapsedLine parsed;
        const char* first = weight_text.data();
        const char* last = first + weight_text.size();
        if (*first < '0' || *first > '9') return fail("weight is not a non-negative integer");
        auto [ptr, ec] = std::from_chars(first, last, parsed.weight);
        if (ec == std::errc::result_out_of_range) return fail("weight does not fit in 64 bits");
        if (ec != std::errc() || ptr != last) return fail("weight is not a non-negative integer");
        if (stack_text.empty()) return fail("empty stack");

        std::size_t start = 0;
        while (true) {
            const std::size_t semi = stack_text.find(';', start);
            const std::string_view frame =
                stack_text.substr(start, semi == std::string_view::npos ? std::string_view::npos : semi - start);
            if (frame.empty()) return fail("empty frame");
            parsed.frames.emplace_back(frame);
            if (semi == std::string_view::npos) break;
            start = semi + 1;
        }
        lines.push_back(std::move(parsed));
    }
    return lines;
}

}  // namespace loopspy
