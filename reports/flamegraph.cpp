#include "reports/flamegraph.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <unordered_map>

#include "reports/collapsed.hpp"
#include "reports/flamegraph_assets.hpp"
#include "reports/text.hpp"

namespace loopspy {

namespace {

constexpr std::string_view kEllipsis = "\xE2\x80\xA6";     // U+2026
constexpr int kSidePad = 10;
constexpr int kFooterHeight = 46;  // the legend's row, then the details' row
constexpr const char* kRootColor = "rgb(196,196,196)";

// Valid UTF-8 without control characters (C0, DEL, C1) and without U+FFFE/U+FFFF, which XML
// does not allow. Surrogates and other invalid sequences are already gone after sanitize_utf8.
std::string clean_text(std::string_view raw) {
    if (std::all_of(raw.begin(), raw.end(), [](char c) { return c >= 0x20 && c < 0x7F; })) return std::string(raw);
    const std::string valid = sanitize_utf8(raw);
    std::string out;
    out.reserve(valid.size());
    for (std::size_t i = 0; i < valid.size(); ++i) {
        const auto b = static_cast<unsigned char>(valid[i]);
        if (b < 0x20 || b == 0x7F) continue;
        if (b == 0xC2 && i + 1 < valid.size()) {
            const auto next = static_cast<unsigned char>(valid[i + 1]);
            if (next >= 0x80 && next <= 0x9F) {  // U+0080..U+009F
                ++i;
                continue;
            }
        }
        if (b == 0xEF && i + 2 < valid.size() && static_cast<unsigned char>(valid[i + 1]) == 0xBF &&
            (static_cast<unsigned char>(valid[i + 2]) == 0xBE || static_cast<unsigned char>(valid[i + 2]) == 0xBF)) {
            out.append(kReplacementChar);
            i += 2;
            continue;
        }
        out.push_back(valid[i]);
    }
    return out;
}

// Escapes already clean text for element content or a quoted attribute value.
void append_escaped(std::string& out, std::string_view clean) {
    for (char c : clean) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out.push_back(c);
        }
    }
}

std::string display_name(std::string_view raw) {
    std::string name = clean_text(raw);
    if (name.empty()) name = "<empty>";
    return name;
}

// A decimal with `precision` digits after the point; if trim, trailing zeros (and the point) go.
std::string fixed(double value, int precision, bool trim) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed, precision);
    if (ec != std::errc()) return "0";
    std::string s(buf, end);
    if (trim && s.find('.') != std::string::npos) {
        while (s.back() == '0') s.pop_back();
        if (s.back() == '.') s.pop_back();
    }
    if (s == "-0") s = "0";
    return s;
}

std::string px(double value) { return fixed(value, 2, true); }

std::string format_time(std::uint64_t us) {
    if (us < 1000) return std::to_string(us) + " \xC2\xB5s";
    if (us < 1000000) return fixed(static_cast<double>(us) / 1e3, 2, false) + " ms";
    return fixed(static_cast<double>(us) / 1e6, 3, false) + " s";
}

std::string format_percent(std::uint64_t part, std::uint64_t whole) {
    const double pct = whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
    return fixed(pct, 2, false) + "%";
}

std::size_t count_code_points(std::string_view s) {
    std::size_t n = 0;
    for (char c : s) {
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
    }
    return n;
}

// The first `n` code points of valid UTF-8 text.
std::string_view prefix_code_points(std::string_view s, std::size_t n) {
    std::size_t seen = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
            if (seen == n) return s.substr(0, i);
            ++seen;
        }
    }
    return s;
}

// The label shown inside a frame of `width` pixels; the script applies the same rule.
std::string fit_label(std::string_view name, double width, double char_width) {
    const double room = std::floor((width - 6.0) / char_width);
    if (room < 1.0) return {};
    const auto max_chars = static_cast<std::size_t>(room);
    if (count_code_points(name) <= max_chars) return std::string(name);
    if (max_chars < 3) return {};
    std::string label(prefix_code_points(name, max_chars - 1));
    label.append(kEllipsis);
    return label;
}

std::uint64_t hash_name(std::string_view s) {
    std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
    for (char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    // Spread the bits so that similar names still get visibly different shades.
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

// h in degrees, s and l in [0, 1].
std::string hsl_to_rgb(double h, double s, double l) {
    const double c = (1.0 - std::fabs(2.0 * l - 1.0)) * s;
    const double hp = h / 60.0;
    const double x = c * (1.0 - std::fabs(std::fmod(hp, 2.0) - 1.0));
    double r = 0, g = 0, b = 0;
    if (hp < 1) { r = c; g = x; }
    else if (hp < 2) { r = x; g = c; }
    else if (hp < 3) { g = c; b = x; }
    else if (hp < 4) { g = x; b = c; }
    else if (hp < 5) { r = x; b = c; }
    else { r = c; b = x; }
    const double m = l - c / 2.0;
    auto channel = [&](double v) {
        const long n = std::lround((v + m) * 255.0);
        return std::to_string(std::clamp(n, 0L, 255L));
    };
    return "rgb(" + channel(r) + "," + channel(g) + "," + channel(b) + ")";
}

double unit(std::uint64_t h, int shift) { return static_cast<double>((h >> shift) % 1000) / 999.0; }

bool is_special(std::string_view name) { return name.size() >= 2 && name.front() == '<' && name.back() == '>'; }

// The merged call tree in pre-order (children in name order), so every subtree is the
// contiguous range [index, end) and nothing needs recursion, however deep the stacks are.
struct Node {
    std::uint32_t name = 0;  // index into Tree::names
    std::uint32_t depth = 0;
    std::uint32_t end = 0;   // one past the last node of this subtree
    bool thread_root = false;
    std::uint64_t total = 0;
};

struct Tree {
    std::vector<std::string> names;  // display names in byte order; names[0] is the root's "all"
    std::vector<Node> nodes;         // nodes[0] is the root
};

Tree build_tree(const std::vector<WeightedStack>& stacks) {
    // Intern the frames: raw text -> display name -> id. Distinct raw texts may share a display
    // name (e.g. differing only in invalid bytes); they are then the same frame.
    std::unordered_map<std::string, std::uint32_t> by_raw;
    std::unordered_map<std::string, std::uint32_t> by_display;
    std::vector<std::string> display;
    std::vector<std::uint32_t> ids;      // all frames of all kept stacks, back to back
    std::vector<std::size_t> starts;     // stack k is ids[starts[k], starts[k + 1])
    std::vector<std::uint64_t> weights;
    for (const auto& stack : stacks) {
        if (stack.frames.empty() || stack.weight_us == 0) continue;
        starts.push_back(ids.size());
        weights.push_back(stack.weight_us);
        for (const auto& frame : stack.frames) {
            auto it = by_raw.find(frame);
            if (it == by_raw.end()) {
                std::string name = display_name(frame);
                auto [d, inserted] = by_display.try_emplace(name, static_cast<std::uint32_t>(display.size()));
                if (inserted) display.push_back(std::move(name));
                it = by_raw.emplace(frame, d->second).first;
            }
            ids.push_back(it->second);
        }
    }
    starts.push_back(ids.size());
    const std::size_t count = weights.size();

    // Renumber the names by byte order (+1: 0 is the root), so ids compare like names.
    std::vector<std::uint32_t> order(display.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return display[a] < display[b]; });
    std::vector<std::uint32_t> rank(display.size());
    Tree tree;
    tree.names.reserve(display.size() + 1);
    tree.names.emplace_back("all");
    for (std::uint32_t r = 0; r < order.size(); ++r) {
        rank[order[r]] = r + 1;
        tree.names.push_back(std::move(display[order[r]]));
    }
    for (auto& id : ids) id = rank[id];

    // Sorting the stacks puts every shared prefix next to itself: the tree is then built in
    // pre-order by reusing the prefix shared with the previous stack.
    std::vector<std::uint32_t> sorted(count);
    for (std::uint32_t i = 0; i < count; ++i) sorted[i] = i;
    auto begin_of = [&](std::uint32_t k) { return ids.begin() + static_cast<std::ptrdiff_t>(starts[k]); };
    auto end_of = [&](std::uint32_t k) { return ids.begin() + static_cast<std::ptrdiff_t>(starts[k + 1]); };
    std::sort(sorted.begin(), sorted.end(), [&](std::uint32_t a, std::uint32_t b) {
        return std::lexicographical_compare(begin_of(a), end_of(a), begin_of(b), end_of(b));
    });

    tree.nodes.push_back(Node{});
    std::vector<std::uint32_t> path;  // path[k]: the node at depth k + 1 of the previous stack
    const std::uint32_t* prev = nullptr;
    for (std::uint32_t k : sorted) {
        const std::uint32_t* frames = ids.data() + starts[k];
        const std::size_t len = starts[k + 1] - starts[k];
        std::size_t shared = 0;
        if (prev != nullptr) {
            while (shared < len && shared < path.size() && frames[shared] == prev[shared]) ++shared;
        }
        while (path.size() > shared) {
            tree.nodes[path.back()].end = static_cast<std::uint32_t>(tree.nodes.size());
            path.pop_back();
        }
        for (std::size_t d = shared; d < len; ++d) {
            Node node;
            node.name = frames[d];
            node.depth = static_cast<std::uint32_t>(d + 1);
            node.thread_root = (d == 0 || (d == 1 && tree.names[frames[0]].starts_with("process "))) &&
                               (tree.names[frames[d]].starts_with("thread ") || tree.names[frames[d]].starts_with("process "));
            path.push_back(static_cast<std::uint32_t>(tree.nodes.size()));
            tree.nodes.push_back(node);
        }
        tree.nodes[0].total += weights[k];
        for (std::uint32_t n : path) tree.nodes[n].total += weights[k];
        prev = frames;
    }
    for (std::uint32_t n : path) tree.nodes[n].end = static_cast<std::uint32_t>(tree.nodes.size());
    tree.nodes[0].end = static_cast<std::uint32_t>(tree.nodes.size());
    return tree;
}

struct Placed {
    std::uint32_t node;
    std::uint64_t offset;  // microseconds from the left edge of the root
};

// The style and the script are reports/assets/flamegraph.{css,js}, embedded at build time
// (cmake/embed_assets.cmake). The script is a constant: it never contains names; it reads
// everything from the DOM.

void open_svg(std::string& out, int width, int height) {
    out += "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n";
    out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + std::to_string(width) +
           "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " +
           std::to_string(height) + "\"";
}

void append_header(std::string& out, const FlameGraphOptions& opts, int width, int height, int font_size) {
    out += "<title>";
    append_escaped(out, clean_text(opts.title));
    out += "</title>\n<style type=\"text/css\"><![CDATA[\n";
    out += kFlamegraphCss;
    out += "#frames text { font-size: " + std::to_string(font_size) + "px; }\n";
    out += "]]></style>\n";
    out += "<rect class=\"bg\" x=\"0\" y=\"0\" width=\"" + std::to_string(width) + "\" height=\"" +
           std::to_string(height) + "\"/>\n";
    out += "<text id=\"title\" x=\"" + px(width / 2.0) + "\" y=\"24\" text-anchor=\"middle\">";
    if (!opts.title_tooltip.empty()) {
        out += "<title>";
        append_escaped(out, clean_text(opts.title_tooltip));
        out += "</title>";
    }
    append_escaped(out, clean_text(opts.title));
    out += "</text>\n";
    const std::string subtitle = clean_text(opts.subtitle);
    if (!subtitle.empty()) {
        out += "<text id=\"subtitle\" x=\"" + px(width / 2.0) + "\" y=\"42\" text-anchor=\"middle\">";
        append_escaped(out, subtitle);
        out += "</text>\n";
    }
}

}  // namespace

std::string xml_escape(std::string_view text) {
    std::string out;
    append_escaped(out, clean_text(text));
    return out;
}

namespace {

/// The kinds of frame the colours (and the legend) tell apart.
enum class FrameKind { Root, OffCpu, Idle, Task, Marker, Python };

FrameKind kind_of(std::string_view name, bool thread_root) {
    if (thread_root) return FrameKind::Root;
    if (name.starts_with("<off-CPU")) return FrameKind::OffCpu;
    if (name == "<idle>") return FrameKind::Idle;
    if (name.starts_with("<task> ")) return FrameKind::Task;
    if (is_special(name)) return FrameKind::Marker;
    return FrameKind::Python;
}

/// A kind's colour, varied a little by the name's hash `u` (three numbers in [0, 1)).
std::string kind_color(FrameKind kind, double u0, double u1, double u2) {
    switch (kind) {
        case FrameKind::Root: return hsl_to_rgb(200.0 + 22.0 * u0, 0.50 + 0.15 * u1, 0.62 + 0.08 * u2);
        case FrameKind::OffCpu: return hsl_to_rgb(262.0 + 25.0 * u0, 0.42 + 0.18 * u1, 0.66 + 0.08 * u2);
        case FrameKind::Idle: return hsl_to_rgb(60.0, 0.06, 0.82);
        case FrameKind::Task: return hsl_to_rgb(108.0 + 25.0 * u0, 0.40 + 0.15 * u1, 0.55 + 0.10 * u2);
        case FrameKind::Marker: return hsl_to_rgb(165.0 + 20.0 * u0, 0.25 + 0.13 * u1, 0.58 + 0.10 * u2);
        case FrameKind::Python: break;
    }
    return hsl_to_rgb(52.0 * u0, 0.72 + 0.23 * u1, 0.52 + 0.14 * u2);
}

/// One swatch and name per kind, on one row at `y`.
void append_legend(std::string& out, int y) {
    const std::pair<FrameKind, const char*> items[] = {
        {FrameKind::Python, "Python"}, {FrameKind::OffCpu, "off-CPU (by syscall)"}, {FrameKind::Idle, "<idle> (loop waiting)"},
        {FrameKind::Task, "<task> (asyncio)"}, {FrameKind::Marker, "other markers"}, {FrameKind::Root, "thread / process"}};
    out += "<g id=\"legend\">";
    int x = kSidePad;
    for (const auto& [kind, label] : items) {
        out += "<rect x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(y - 10) + "\" width=\"11\" height=\"11\" rx=\"2\" fill=\"" +
               kind_color(kind, 0.5, 0.5, 0.5) + "\"/><text x=\"" + std::to_string(x + 15) + "\" y=\"" + std::to_string(y) + "\">";
        append_escaped(out, label);
        out += "</text>";
        x += 15 + static_cast<int>(7.2 * std::string_view(label).size()) + 14;
    }
    out += "</g>\n";
}

}  // namespace

std::string flame_color(std::string_view name, bool thread_root) {
    const std::uint64_t h = hash_name(name);
    return kind_color(kind_of(name, thread_root), unit(h, 0), unit(h, 16), unit(h, 32));
}

std::string render_flamegraph(const std::vector<WeightedStack>& stacks, const FlameGraphOptions& opts) {
    const int width = std::max(opts.width, 200);
    const int fh = std::max(opts.frame_height, 8);
    const int font_size = std::clamp(fh - 4, 6, 12);
    const double char_width = 0.6 * font_size;
    const double full_width = width - 2.0 * kSidePad;
    const double min_width = std::isfinite(opts.min_width_px) ? std::max(opts.min_width_px, 0.0) : 0.0;

    const Tree tree = build_tree(stacks);
    const std::vector<Node>& nodes = tree.nodes;
    const std::uint64_t total = nodes[0].total;
    const std::string header_subtitle = clean_text(opts.subtitle);
    const std::string count_name = clean_text(opts.count_name).empty() ? "time" : clean_text(opts.count_name);

    std::string out;
    if (total == 0) {
        const int height = 120;
        open_svg(out, width, height);
        out += ">\n";
        append_header(out, opts, width, height, font_size);
        out += "<text id=\"details\" x=\"" + px(width / 2.0) + "\" y=\"75\" text-anchor=\"middle\">no samples</text>\n";
        out += "</svg>\n";
        return out;
    }

    // Lay out in pre-order; a frame narrower than min_width is left out with its whole subtree.
    std::vector<Placed> placed{{0, 0}};
    std::uint32_t max_depth = 0;
    struct Open {
        std::uint32_t node;
        std::uint64_t next;  // offset of the next child
    };
    std::vector<Open> open{{0, 0}};
    const double px_per_us = full_width / static_cast<double>(total);
    for (std::uint32_t i = 1; i < nodes.size();) {
        while (nodes[open.back().node].end <= i) open.pop_back();
        const Node& node = nodes[i];
        const std::uint64_t offset = open.back().next;
        open.back().next += node.total;
        if (static_cast<double>(node.total) * px_per_us < min_width) {
            i = node.end;
            continue;
        }
        placed.push_back({i, offset});
        open.push_back({i, offset});
        max_depth = std::max(max_depth, node.depth);
        ++i;
    }

    const int header_height = header_subtitle.empty() ? 36 : 52;
    const int top = header_height;                    // y of the deepest level
    const int base = header_height + static_cast<int>(max_depth) * fh;  // y of the root level
    const int height = base + fh + kFooterHeight;

    out.reserve(placed.size() * 260 + 12000);
    open_svg(out, width, height);
    out += " data-xpad=\"" + std::to_string(kSidePad) + "\" data-fh=\"" + std::to_string(fh) + "\" data-base=\"" +
           std::to_string(base) + "\" data-top=\"" + std::to_string(top) + "\" data-total=\"" +
           std::to_string(total) + "\" data-charw=\"" + px(char_width) + "\">\n";
    append_header(out, opts, width, height, font_size);
    out += "<text id=\"reset\" class=\"ctl hidden\" x=\"" + std::to_string(kSidePad) + "\" y=\"24\">Reset zoom</text>\n";
    out += "<text id=\"invert\" class=\"ctl\" x=\"" + std::to_string(kSidePad + 90) + "\" y=\"24\">Icicle</text>\n";
    out += "<text id=\"clear\" class=\"ctl hidden\" x=\"" + std::to_string(width - kSidePad - 58) +
           "\" y=\"24\" text-anchor=\"end\">Clear</text>\n";
    out += "<text id=\"search\" class=\"ctl\" x=\"" + std::to_string(width - kSidePad) +
           "\" y=\"24\" text-anchor=\"end\">Search</text>\n";

    out += "<g id=\"frames\">\n";
    const double text_dy = (fh - 1) / 2.0 + 0.35 * font_size;
    for (const Placed& p : placed) {
        const Node& node = nodes[p.node];
        const double x = kSidePad + static_cast<double>(p.offset) * px_per_us;
        const double w = static_cast<double>(node.total) * px_per_us;
        const int y = base - static_cast<int>(node.depth) * fh;
        const std::string& name = tree.names[node.name];
        out += "<g data-o=\"" + std::to_string(p.offset) + "\" data-v=\"" + std::to_string(node.total) +
               "\"><title>";
        append_escaped(out, name);
        out.push_back('\n');
        append_escaped(out, count_name + ": " + format_time(node.total) + " (" + format_percent(node.total, total) + ")");
        out += "</title><rect x=\"" + px(x) + "\" y=\"" + std::to_string(y) + "\" width=\"" + px(w) +
               "\" height=\"" + std::to_string(fh - 1) + "\" rx=\"2\" fill=\"" +
               (p.node == 0 ? std::string(kRootColor) : flame_color(name, node.thread_root)) + "\"/><text x=\"" +
               px(x + 3) + "\" y=\"" + px(y + text_dy) + "\">";
        append_escaped(out, fit_label(name, w, char_width));
        out += "</text></g>\n";
    }
    out += "</g>\n";

    append_legend(out, height - 28);
    out += "<text id=\"details\" x=\"" + std::to_string(kSidePad) + "\" y=\"" + std::to_string(height - 10) + "\">";
    append_escaped(out, "Total " + count_name + ": " + format_time(total));
    out += "</text>\n";
    out += "<text id=\"matched\" x=\"" + std::to_string(width - kSidePad) + "\" y=\"" + std::to_string(height - 10) +
           "\" text-anchor=\"end\"></text>\n";
    out += "<script type=\"text/ecmascript\"><![CDATA[\n";
    out += kFlamegraphJs;
    out += "]]></script>\n</svg>\n";
    return out;
}

}  // namespace loopspy
