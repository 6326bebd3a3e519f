#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "reports/collapsed.hpp"
#include "reports/flamegraph.hpp"
#include "reports/text.hpp"

using namespace loopspy;

namespace {

std::size_t count_of(const std::string& haystack, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
    return n;
}

bool is_name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }

// Checks character data: valid UTF-8, no characters XML forbids, only well-formed references.
std::string check_chars(std::string_view s, bool attribute) {
    if (sanitize_utf8(s) != s) return "invalid UTF-8";
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto b = static_cast<unsigned char>(s[i]);
        if (b < 0x20 && b != '\t' && b != '\n' && b != '\r') return "control character";
        if (s[i] == '<') return "raw '<'";
        if (attribute && s[i] == '"') return "raw quote in attribute";
        if (s.substr(i, 3) == "]]>") return "']]>' in text";
        if (s.substr(i, 3) == "\xEF\xBF\xBE" || s.substr(i, 3) == "\xEF\xBF\xBF") return "U+FFFE/U+FFFF";
        if (s[i] == '&') {
            const std::size_t semi = s.find(';', i);
            if (semi == std::string_view::npos) return "unterminated reference";
            const std::string_view ref = s.substr(i + 1, semi - i - 1);
            static const std::set<std::string_view> named = {"amp", "lt", "gt", "quot", "apos"};
            bool ok = named.count(ref) != 0;
            if (!ok && ref.size() > 1 && ref[0] == '#') {
                ok = std::all_of(ref.begin() + 1, ref.end(), [](char c) { return c >= '0' && c <= '9'; });
            }
            if (!ok) return "bad reference &" + std::string(ref) + ";";
            i = semi;
        }
    }
    return {};
}

// A small well-formedness checker: one root element, balanced and matching tags, quoted and
// unique attributes, legal character data, comments, CDATA sections and processing instructions.
// Returns an empty string when the document is well-formed, otherwise what is wrong.
std::string xml_problem(const std::string& doc) {
    std::vector<std::string> open;
    int roots = 0;
    std::size_t i = 0;
    auto at = [&](std::string_view prefix) { return doc.compare(i, prefix.size(), prefix) == 0; };
    while (i < doc.size()) {
        if (doc[i] != '<') {
            const std::size_t next = doc.find('<', i);
            const std::string_view text(doc.data() + i, (next == std::string::npos ? doc.size() : next) - i);
            if (open.empty() && text.find_first_not_of(" \t\r\n") != std::string_view::npos) return "text outside the root";
            if (auto p = check_chars(text, false); !p.empty()) return p + " in text at " + std::to_string(i);
            i += text.size();
            continue;
        }
        if (at("<?")) {
            const std::size_t end = doc.find("?>", i);
            if (end == std::string::npos) return "unterminated processing instruction";
            i = end + 2;
        } else if (at("<!--")) {
            const std::size_t end = doc.find("-->", i);
            if (end == std::string::npos) return "unterminated comment";
            i = end + 3;
        } else if (at("<![CDATA[")) {
            if (open.empty()) return "CDATA outside the root";
            const std::size_t end = doc.find("]]>", i);
            if (end == std::string::npos) return "unterminated CDATA";
            i = end + 3;
        } else if (at("</")) {
            std::size_t j = i + 2;
            while (j < doc.size() && is_name_char(doc[j])) ++j;
            const std::string name = doc.substr(i + 2, j - i - 2);
            while (j < doc.size() && std::isspace(static_cast<unsigned char>(doc[j]))) ++j;
            if (j >= doc.size() || doc[j] != '>') return "bad end tag </" + name;
            if (open.empty() || open.back() != name) return "mismatched end tag </" + name + ">";
            open.pop_back();
            i = j + 1;
        } else {
            std::size_t j = i + 1;
            if (j >= doc.size() || !is_name_start(doc[j])) return "bad start tag at " + std::to_string(i);
            while (j < doc.size() && is_name_char(doc[j])) ++j;
            const std::string name = doc.substr(i + 1, j - i - 1);
            std::set<std::string> attrs;
            bool self_closing = false;
            while (true) {
                const std::size_t before = j;
                while (j < doc.size() && std::isspace(static_cast<unsigned char>(doc[j]))) ++j;
                if (j >= doc.size()) return "unterminated tag <" + name;
                if (doc[j] == '>') { ++j; break; }
                if (doc.compare(j, 2, "/>") == 0) { j += 2; self_closing = true; break; }
                if (j == before) return "no space before attribute in <" + name;
                const std::size_t a = j;
                if (!is_name_start(doc[j])) return "bad attribute in <" + name;
                while (j < doc.size() && is_name_char(doc[j])) ++j;
                const std::string attr = doc.substr(a, j - a);
                if (!attrs.insert(attr).second) return "duplicate attribute " + attr;
                if (j >= doc.size() || doc[j] != '=') return "attribute without value: " + attr;
                ++j;
                if (j >= doc.size() || (doc[j] != '"' && doc[j] != '\'')) return "unquoted attribute " + attr;
                const char quote = doc[j];
                const std::size_t end = doc.find(quote, j + 1);
                if (end == std::string::npos) return "unterminated attribute " + attr;
                if (auto p = check_chars(std::string_view(doc).substr(j + 1, end - j - 1), quote == '"'); !p.empty())
                    return p + " in attribute " + attr;
                j = end + 1;
            }
            if (open.empty()) {
                if (++roots > 1) return "more than one root element";
            }
            if (!self_closing) open.push_back(name);
            i = j;
        }
    }
    if (!open.empty()) return "unclosed element <" + open.back() + ">";
    if (roots != 1) return "no root element";
    return {};
}

// xmllint's verdict on the document (scripts/setup.sh --test installs libxml2-utils; without
// it the check fails, naming it).
bool xmllint_accepts(const std::string& doc) {
    REQUIRE_MESSAGE(std::system("command -v xmllint >/dev/null 2>&1") == 0,
                    "xmllint is missing: run scripts/setup.sh --test (libxml2-utils)");
    char path[] = "/tmp/loopspy_fg_XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    {
        std::ofstream f(path, std::ios::binary);
        f << doc;
    }
    const int rc = std::system(("xmllint --noout " + std::string(path) + " 2>/dev/null").c_str());
    std::remove(path);
    ::close(fd);
    return rc == 0;
}

// The value of attribute `attr` of the first `element` after the <title> of the frame called
// (escaped) `name`, or "" if there is none.
std::string frame_attr(const std::string& svg, const std::string& escaped_name, const std::string& element,
                       const std::string& attr) {
    const std::size_t t = svg.find("<title>" + escaped_name + "\n");
    if (t == std::string::npos) return {};
    const std::size_t e = svg.find("<" + element + " ", t);
    if (e == std::string::npos) return {};
    const std::size_t end = svg.find('>', e);
    const std::size_t a = svg.find(" " + attr + "=\"", e);
    if (a == std::string::npos || a > end) return {};
    const std::size_t v = a + attr.size() + 3;
    return svg.substr(v, svg.find('"', v) - v);
}

double frame_width(const std::string& svg, const std::string& escaped_name) {
    const std::string w = frame_attr(svg, escaped_name, "rect", "width");
    REQUIRE_FALSE(w.empty());
    return std::stod(w);
}

std::vector<WeightedStack> realistic_profile() {
    std::vector<WeightedStack> stacks;
    std::mt19937 rng(7);
    const std::vector<std::string> threads = {"thread MainThread (4242)", "thread asyncio_0 (4250)",
                                              "thread ThreadPoolExecutor-0_0 (4251)"};
    const std::vector<std::string> funcs = {"run (asyncio/runners.py:44)", "run_until_complete (asyncio/base_events.py:636)",
                                            "run_forever (asyncio/base_events.py:603)", "_run_once (asyncio/base_events.py:1909)",
                                            "_run (asyncio/events.py:80)", "handle_request (app/server.py:120)",
                                            "fetch_user (app/db.py:33)", "execute (asyncpg/connection.py:318)",
                                            "render (app/templates.py:77)", "json_dumps (app/util.py:12)",
                                            "compute_hash (app/crypto.py:55)", "<idle>", "parse (app/parser.py:201)"};
    for (std::size_t t = 0; t < threads.size(); ++t) {
        for (int s = 0; s < 60; ++s) {
            WeightedStack st;
            st.frames.push_back(threads[t]);
            const int depth = 3 + static_cast<int>(rng() % 18);
            for (int d = 0; d < depth; ++d) st.frames.push_back(funcs[(d < 5) ? d : 5 + rng() % 8]);
            st.weight_us = 1000 + rng() % 200000;
            stacks.push_back(std::move(st));
        }
    }
    return stacks;
}

}  // namespace

TEST_CASE("xml_escape") {
    CHECK(xml_escape("a\"b'c&d<e>f") == "a&quot;b&apos;c&amp;d&lt;e&gt;f");
    CHECK(xml_escape("line\nbreak\ttab\r\x01\x7f") == "linebreaktab");
    CHECK(xml_escape("x\xC2\x85y") == "xy");                                 // C1 control NEL
    CHECK(xml_escape("bad\xFF") == "bad\xEF\xBF\xBD");                       // invalid UTF-8
    CHECK(xml_escape("nc\xEF\xBF\xBE") == "nc\xEF\xBF\xBD");                 // U+FFFE is not XML
    CHECK(xml_escape("\xE6\x97\xA5\xE6\x9C\xAC \xC3\xA9") == "\xE6\x97\xA5\xE6\x9C\xAC \xC3\xA9");
}

TEST_CASE("flamegraph: script injection through names is inert") {
    const std::string evil = "<script>alert(1)</script>";
    std::vector<WeightedStack> stacks = {
        {{"thread \"Main\" & 'co' (1)", evil, "f ]]> <![CDATA[ x (a.py:1)"}, 5000},
        {{"thread \"Main\" & 'co' (1)", "</svg><svg onload=alert(2)>"}, 3000},
        {{"thread \"Main\" & 'co' (1)", "x');alert(3);('"}, 2000},
    };
    FlameGraphOptions opts;
    opts.title = "<script>alert(4)</script>";
    opts.subtitle = "sub \"quoted\" 'single' & <b>";
    opts.count_name = "<i>time</i>";
    const std::string svg = render_flamegraph(stacks, opts);
    CHECK(svg.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
    CHECK(svg.find("&lt;script&gt;alert(4)&lt;/script&gt;") != std::string::npos);
    CHECK(svg.find("<script>alert") == std::string::npos);
    CHECK(count_of(svg, "<script") == 1);
    CHECK(count_of(svg, "</script>") == 1);
    CHECK(svg.find("<svg onload") == std::string::npos);
    CHECK(svg.find("&lt;/svg&gt;&lt;svg onload=alert(2)&gt;") != std::string::npos);
    CHECK(svg.find("x&apos;);alert(3);(&apos;") != std::string::npos);
    CHECK(svg.find("thread &quot;Main&quot; &amp; &apos;co&apos; (1)") != std::string::npos);
    CHECK(svg.find("sub &quot;quoted&quot; &apos;single&apos; &amp; &lt;b&gt;") != std::string::npos);
    CHECK(svg.find("<i>") == std::string::npos);
    CHECK(count_of(svg, "]]>") == 2);  // only the ends of the style and script CDATA sections

    // No name reaches the script source.
    const std::size_t script = svg.find("<script");
    const std::string js = svg.substr(script, svg.find("</script>") - script);
    CHECK(js.find("alert") == std::string::npos);
    CHECK(js.find("Main") == std::string::npos);

    CHECK(xml_problem(svg) == "");
    CHECK(xmllint_accepts(svg));
}

TEST_CASE("flamegraph: control characters and invalid UTF-8 in names") {
    const std::vector<WeightedStack> stacks = {
        {{"thread T (1)", "multi\nline\tname\r (a.py:1)", "bad \xC3\x28 byte", std::string("nul\0byte", 8), ""}, 100},
    };
    const std::string svg = render_flamegraph(stacks, {});
    CHECK(xml_problem(svg) == "");
    CHECK(xmllint_accepts(svg));
    CHECK(svg.find("<title>multilinename (a.py:1)\n") != std::string::npos);
    CHECK(svg.find("<title>bad \xEF\xBF\xBD( byte\n") != std::string::npos);
    CHECK(svg.find("<title>nulbyte\n") != std::string::npos);
    CHECK(svg.find("<title>&lt;empty&gt;\n") != std::string::npos);
}

TEST_CASE("flamegraph: well-formed for a realistic profile and labels without script") {
    const std::string svg = render_flamegraph(realistic_profile(), {});
    CHECK(xml_problem(svg) == "");
    CHECK(xmllint_accepts(svg));
    CHECK(svg.starts_with("<?xml"));
    CHECK(svg.find("Reset zoom") != std::string::npos);
    CHECK(svg.find(">Search<") != std::string::npos);
    // The main thread frame is wide: its label is there in the static SVG.
    CHECK(svg.find(">thread MainThread (4242)</text>") != std::string::npos);
    // Static truncation ends with an ellipsis somewhere in a realistic graph.
    CHECK(svg.find("\xE2\x80\xA6</text>") != std::string::npos);
}

TEST_CASE("flamegraph: widths are proportional to weights and shared prefixes merge") {
    const std::vector<WeightedStack> stacks = {
        {{"thread T (1)", "main", "a"}, 300000},
        {{"thread T (1)", "main", "b"}, 100000},
        {{"thread T (1)", "main"}, 100000},  // self time of main
    };
    FlameGraphOptions opts;
    opts.width = 1010;  // 990 px for the root after 10 px on each side
    const std::string svg = render_flamegraph(stacks, opts);
    CHECK(count_of(svg, "<title>main\n") == 1);
    CHECK(svg.find("<title>main\ntime: 500.00 ms (100.00%)</title>") != std::string::npos);
    CHECK(svg.find("<title>a\ntime: 300.00 ms (60.00%)</title>") != std::string::npos);
    CHECK(frame_width(svg, "all") == doctest::Approx(990.0).epsilon(0.001));
    CHECK(frame_width(svg, "main") == doctest::Approx(990.0).epsilon(0.001));
    CHECK(frame_width(svg, "a") == doctest::Approx(594.0).epsilon(0.001));
    CHECK(frame_width(svg, "b") == doctest::Approx(198.0).epsilon(0.001));
    CHECK(frame_width(svg, "a") / frame_width(svg, "b") == doctest::Approx(3.0).epsilon(0.001));
    // Children sit side by side from the parent's left edge, in name order.
    CHECK(std::stod(frame_attr(svg, "a", "rect", "x")) == doctest::Approx(10.0));
    CHECK(std::stod(frame_attr(svg, "b", "rect", "x")) == doctest::Approx(604.0));
    // Deeper frames are higher up (root at the bottom).
    CHECK(std::stod(frame_attr(svg, "a", "rect", "y")) < std::stod(frame_attr(svg, "main", "rect", "y")));
    CHECK(std::stod(frame_attr(svg, "main", "rect", "y")) < std::stod(frame_attr(svg, "all", "rect", "y")));
}

TEST_CASE("flamegraph: time formatting") {
    const std::string svg = render_flamegraph({{{"thread T (1)", "tiny"}, 250}, {{"thread T (1)", "big"}, 2500000}}, {});
    CHECK(svg.find("<title>tiny\ntime: 250 \xC2\xB5s (0.01%)</title>") != std::string::npos);
    CHECK(svg.find("<title>big\ntime: 2.500 s (99.99%)</title>") != std::string::npos);
}

TEST_CASE("flamegraph: narrow frames are omitted but still count in their parent") {
    const std::vector<WeightedStack> stacks = {
        {{"thread T (1)", "wide"}, 1000000},
        {{"thread T (1)", "narrow", "narrower"}, 10},  // ~0.01 px at 1200 px
    };
    const std::string svg = render_flamegraph(stacks, {});
    CHECK(svg.find("<title>narrow\n") == std::string::npos);
    CHECK(svg.find("<title>narrower\n") == std::string::npos);
    CHECK(svg.find("data-v=\"1000010\"><title>thread T (1)\ntime: 1.000 s (100.00%)</title>") != std::string::npos);
    FlameGraphOptions all;
    all.min_width_px = 0;
    const std::string full = render_flamegraph(stacks, all);
    CHECK(full.find("<title>narrower\n") != std::string::npos);
}

TEST_CASE("flamegraph: a 300-level stack renders every level") {
    WeightedStack deep;
    deep.frames.push_back("thread MainThread (1)");
    for (int i = 1; i < 300; ++i) deep.frames.push_back("level_" + std::to_string(i) + " (deep.py:" + std::to_string(i) + ")");
    deep.weight_us = 1000;
    const std::string svg = render_flamegraph({deep}, {});
    CHECK(count_of(svg, "<g data-o=") == 301);  // "all" plus 300 levels
    for (int i = 1; i < 300; ++i) CHECK(svg.find("<title>level_" + std::to_string(i) + " (deep.py:") != std::string::npos);
    // The picture grows with the depth: all 301 levels of 16 px fit, none at a negative y.
    const std::size_t h = svg.find("height=\"");
    const int height = std::stoi(svg.substr(h + 8));
    CHECK(height >= 301 * 16);
    CHECK(svg.find(" y=\"-") == std::string::npos);
    CHECK(std::stoi(frame_attr(svg, "level_299 (deep.py:299)", "rect", "y")) >= 20);
    CHECK(xml_problem(svg) == "");
}

TEST_CASE("flamegraph: output does not depend on input order") {
    std::vector<WeightedStack> stacks = realistic_profile();
    const std::string first = render_flamegraph(stacks, {});
    std::mt19937 rng(1234);
    for (int i = 0; i < 5; ++i) {
        std::shuffle(stacks.begin(), stacks.end(), rng);
        CHECK(render_flamegraph(stacks, {}) == first);
    }
}

TEST_CASE("flamegraph: colours depend on the name only") {
    const std::string one = render_flamegraph({{{"thread A (1)", "shared (x.py:1)", "foo"}, 10}}, {});
    const std::string two = render_flamegraph(
        {{{"thread B (2)", "other", "deeper", "shared (x.py:1)"}, 77}, {{"thread C (3)", "zzz"}, 5}}, {});
    const std::string c1 = frame_attr(one, "shared (x.py:1)", "rect", "fill");
    const std::string c2 = frame_attr(two, "shared (x.py:1)", "rect", "fill");
    CHECK_FALSE(c1.empty());
    CHECK(c1 == c2);
    CHECK(c1 == flame_color("shared (x.py:1)"));
    CHECK(flame_color("foo") == flame_color("foo"));
    CHECK(flame_color("foo") != flame_color("bar"));
    // Threads roots and special frames get their own hues: threads blue, others warm (red
    // dominant).
    auto rgb = [](const std::string& c) {
        int r = 0, g = 0, b = 0;
        REQUIRE(std::sscanf(c.c_str(), "rgb(%d,%d,%d)", &r, &g, &b) == 3);
        return std::vector<int>{r, g, b};
    };
    const auto thread = rgb(frame_attr(one, "thread A (1)", "rect", "fill"));
    CHECK(thread[2] > thread[0]);
    CHECK(frame_attr(one, "thread A (1)", "rect", "fill") == flame_color("thread A (1)", true));
    // The kinds the legend names are told apart: off-CPU violet (blue over red over green), idle
    // a light grey, task frames green, other markers teal (green and blue over red).
    const auto off = rgb(flame_color("<off-CPU: futex>"));
    CHECK(off[2] > off[0]);
    CHECK(off[0] > off[1]);
    const auto idle = rgb(flame_color("<idle>"));
    CHECK(std::max({idle[0], idle[1], idle[2]}) - std::min({idle[0], idle[1], idle[2]}) < 20);
    CHECK(std::min({idle[0], idle[1], idle[2]}) > 190);
    const auto task = rgb(flame_color("<task> worker-1"));
    CHECK(task[1] > task[0]);
    CHECK(task[1] > task[2]);
    const auto marker = rgb(flame_color("<truncated>"));
    CHECK(marker[1] > marker[0]);
    CHECK(marker[2] > marker[0]);
    for (const char* name : {"foo", "bar", "main (app.py:3)", "<module> (app.py:1)", "thread (t.py:3)"}) {
        const auto warm = rgb(flame_color(name));
        CHECK(warm[0] >= warm[1]);
        CHECK(warm[1] >= warm[2]);
    }
}

TEST_CASE("flamegraph: no samples") {
    for (const auto& stacks : {std::vector<WeightedStack>{}, std::vector<WeightedStack>{{{"a"}, 0}, {{}, 5}}}) {
        const std::string svg = render_flamegraph(stacks, {});
        CHECK(svg.find("no samples") != std::string::npos);
        CHECK(xml_problem(svg) == "");
        CHECK(xmllint_accepts(svg));
    }
}

TEST_CASE("xml checker catches broken documents") {
    CHECK(xml_problem("<a><b></a>") != "");
    CHECK(xml_problem("<a x=\"1\" x=\"2\"/>") != "");
    CHECK(xml_problem("<a>&bogus;</a>") != "");
    CHECK(xml_problem("<a>1 < 2</a>") != "");
    CHECK(xml_problem("<a t=\"<\"/>") != "");
    CHECK(xml_problem("<a/><b/>") != "");
    CHECK(xml_problem("<?xml version=\"1.0\"?>\n<a b='c'><![CDATA[ <x> ]]>&amp;</a>\n") == "");
}
