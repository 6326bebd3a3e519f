// The location-table decoder against tables and answers dumped from real interpreters
// (tools/gen_linetable_fixtures.py), plus robustness on garbage.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "symbolizer/frames/linetable.hpp"

#ifndef LOOPSPY_TEST_DATA
#define LOOPSPY_TEST_DATA "tests/data"
#endif

using loopspy::LineRange;
using loopspy::LineTable;

namespace {

std::vector<std::uint8_t> from_hex(const std::string& hex) {
    std::vector<std::uint8_t> out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        out.push_back(static_cast<std::uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}

nlohmann::json load_fixture(const std::string& name) {
    const std::string path = std::string(LOOPSPY_TEST_DATA) + "/linetables/" + name;
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot open " << path);
    return nlohmann::json::parse(in);
}

// co_lines() as LineRanges, with consecutive same-line triples merged. 3.12+ already merge them;
// 3.11 yields one triple per table entry.
std::vector<LineRange> merged_co_lines(const nlohmann::json& lines, bool* was_merged) {
    std::vector<LineRange> out;
    *was_merged = true;
    for (const auto& t : lines) {
        LineRange r{t[0].get<std::uint32_t>(), t[1].get<std::uint32_t>(), t[2].get<std::int32_t>()};
        if (!out.empty() && out.back().line == r.line && out.back().end == r.start) {
            out.back().end = r.end;
            *was_merged = false;
        } else {
            out.push_back(r);
        }
    }
    return out;
}

bool check_invariants(const LineTable& t) {
    std::uint32_t expect_start = 0;
    for (std::size_t i = 0; i < t.ranges().size(); ++i) {
        const auto& r = t.ranges()[i];
        if (r.start != expect_start || r.end <= r.start) return false;
        if (i > 0 && t.ranges()[i - 1].line == r.line) return false;
        expect_start = r.end;
    }
    return true;
}

// The line of every code unit's offset (2 * i) against the interpreter's answer, and the odd
// offset inside it. Returns how many agreed before the first that did not.
std::size_t check_offsets(const LineTable& t, const nlohmann::json& offsets) {
    for (std::size_t i = 0; i < offsets.size(); ++i) {
        const int want = offsets[i].get<int>();
        const int got = t.line_for_offset(static_cast<std::uint32_t>(2 * i));
        if (got != want) {
            FAIL_CHECK("offset " << 2 * i << ": got line " << got << ", interpreter says " << want);
            return i;
        }
        if (t.line_for_offset(static_cast<std::uint32_t>(2 * i + 1)) != want) {
            FAIL_CHECK("odd offset " << 2 * i + 1);
            return i;
        }
    }
    return offsets.size();
}

void check_version(const std::string& version) {
    const auto doc = load_fixture(version + ".json");
    const bool co_lines_merges = version != "3.11";
    const auto& codes = doc.at("codes");
    REQUIRE(codes.size() > 100);
    std::size_t checked_offsets = 0;
    for (const auto& code : codes) {
        const std::string what = version + " " + code.at("source").get<std::string>() + " " +
                                 code.at("qualname").get<std::string>();
        CAPTURE(what);
        const auto table = from_hex(code.at("linetable").get<std::string>());
        const auto t = LineTable::decode(table, code.at("firstlineno").get<int>());
        CHECK_FALSE(t.truncated());
        CHECK(check_invariants(t));
        CHECK(t.code_bytes() == code.at("code_len").get<std::uint32_t>());

        bool already_merged = false;
        const auto expected = merged_co_lines(code.at("lines"), &already_merged);
        CHECK(t.ranges() == expected);
        if (co_lines_merges) CHECK(already_merged);

        checked_offsets += check_offsets(t, code.at("offsets"));
        CHECK(t.line_for_offset(code.at("code_len").get<std::uint32_t>()) == -1);
    }
    CHECK(checked_offsets > 10000);
}

// 3.8, 3.9 (co_lnotab) and 3.10 (its own co_linetable): every even offset's line against the
// interpreter's PyCode_Addr2Line, and the ranges against co_lines() (3.10) or
// dis.findlinestarts() (3.8, 3.9).
void check_version_before_311(const std::string& version) {
    const auto doc = load_fixture(version + ".json");
    const auto& codes = doc.at("codes");
    REQUIRE(codes.size() > 100);
    std::size_t checked_offsets = 0;
    for (const auto& code : codes) {
        const std::string what = version + " " + code.at("source").get<std::string>() + " " +
                                 code.at("qualname").get<std::string>();
        CAPTURE(what);
        const std::string format = code.at("format").get<std::string>();
        REQUIRE((format == "lnotab" || format == "pairs310"));
        const auto code_len = code.at("code_len").get<std::uint32_t>();
        const auto table = from_hex(code.at("linetable").get<std::string>());
        const auto t = LineTable::decode(format == "lnotab" ? loopspy::LineTableFormat::Lnotab
                                                            : loopspy::LineTableFormat::Pairs310,
                                         table, code.at("firstlineno").get<int>(), code_len);
        CHECK_FALSE(t.truncated());
        CHECK(check_invariants(t));
        CHECK(t.code_bytes() == code_len);
        if (format == "pairs310") {
            bool already_merged = false;
            std::vector<LineRange> expected = merged_co_lines(code.at("lines"), &already_merged);
            std::erase_if(expected, [](const LineRange& r) { return r.end <= r.start; });
            CHECK(t.ranges() == expected);
        } else {
            std::vector<std::pair<std::uint32_t, int>> starts, got;
            for (const auto& s : code.at("starts")) starts.emplace_back(s[0].get<std::uint32_t>(), s[1].get<int>());
            for (const LineRange& r : t.ranges()) got.emplace_back(r.start, r.line);
            CHECK(got == starts);
        }
        checked_offsets += check_offsets(t, code.at("offsets"));
    }
    CHECK(checked_offsets > 10000);
}

// A long real table (short, one-line, long and no-location entries), for the robustness tests.
const std::vector<std::uint8_t>& sample_table() {
    static const std::vector<std::uint8_t> t = [] {
        const auto doc = load_fixture("3.12.json");
        // The longest table of the corpus.
        std::string best;
        for (const auto& code : doc.at("codes")) {
            const auto& hex = code.at("linetable").get_ref<const std::string&>();
            if (hex.size() > best.size()) best = hex;
        }
        return from_hex(best);
    }();
    return t;
}

}  // namespace

TEST_CASE("linetable: 3.8 fixtures (co_lnotab)") { check_version_before_311("3.8"); }
TEST_CASE("linetable: 3.9 fixtures (co_lnotab)") { check_version_before_311("3.9"); }
TEST_CASE("linetable: 3.10 fixtures (its co_linetable)") { check_version_before_311("3.10"); }
TEST_CASE("linetable: 3.11 fixtures") { check_version("3.11"); }
TEST_CASE("linetable: 3.12 fixtures") { check_version("3.12"); }
TEST_CASE("linetable: 3.13 fixtures") { check_version("3.13"); }
TEST_CASE("linetable: 3.14 fixtures") { check_version("3.14"); }
TEST_CASE("linetable: 3.15 fixtures") { check_version("3.15"); }

TEST_CASE("linetable: hand-made entries") {
    SUBCASE("empty table") {
        const auto t = LineTable::decode({}, 10);
        CHECK(t.ranges().empty());
        CHECK_FALSE(t.truncated());
        CHECK(t.line_for_offset(0) == -1);
    }
    SUBCASE("each form") {
        const std::vector<std::uint8_t> table = {
            0x80 | (0 << 3) | 0, 0x05,                 // short form, 1 unit, line 10
            0x80 | (11 << 3) | 1, 0x04, 0x08,          // one-line form, 2 units, line 11
            0x80 | (15 << 3) | 0,                      // no location, 1 unit
            0x80 | (13 << 3) | 2, 0x48, 0x03,          // no columns, 3 units, +100 -> 111
            0x80 | (14 << 3) | 0, 0x4b, 0x01, 0, 1, 2, // long, 1 unit, -37 -> 74
            0x80 | (12 << 3) | 7, 0x00, 0x00,          // one-line form, 8 units, +2 -> 76
            0x80 | (3 << 3) | 0, 0x12,                 // short, 1 unit, 76 (merged)
        };
        const auto t = LineTable::decode(table, 10);
        CHECK_FALSE(t.truncated());
        const std::vector<LineRange> want = {
            {0, 2, 10}, {2, 6, 11}, {6, 8, -1}, {8, 14, 111}, {14, 16, 74}, {16, 34, 76}};
        CHECK(t.ranges() == want);
        CHECK(t.line_for_offset(0) == 10);
        CHECK(t.line_for_offset(5) == 11);
        CHECK(t.line_for_offset(6) == -1);
        CHECK(t.line_for_offset(13) == 111);
        CHECK(t.line_for_offset(33) == 76);
        CHECK(t.line_for_offset(34) == -1);
        CHECK(t.line_for_offset(0xffffffffu) == -1);
    }
    SUBCASE("no-location entry does not reset the running line") {
        const std::vector<std::uint8_t> table = {0x80 | (15 << 3), 0x80 | (10 << 3), 0, 0,
                                                 0x80 | (11 << 3), 0, 0};
        const auto t = LineTable::decode(table, 7);
        const std::vector<LineRange> want = {{0, 2, -1}, {2, 4, 7}, {4, 6, 8}};
        CHECK(t.ranges() == want);
    }
    SUBCASE("line going negative is malformed") {
        const std::vector<std::uint8_t> table = {0x80 | (10 << 3), 0, 0, 0x80 | (13 << 3), 0x05};
        const auto t = LineTable::decode(table, 1);  // 1 - 2 = -1
        CHECK(t.truncated());
        CHECK(t.ranges() == std::vector<LineRange>{{0, 2, 1}});
    }
    SUBCASE("varint longer than 32 bits is malformed") {
        const std::vector<std::uint8_t> table = {0x80 | (13 << 3), 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x01};
        const auto t = LineTable::decode(table, 1);
        CHECK(t.truncated());
        CHECK(t.ranges().empty());
    }
}

TEST_CASE("linetable: every truncation of a real table") {
    const auto& full = sample_table();
    REQUIRE(full.size() > 100);
    const auto whole = LineTable::decode(full, 1);
    REQUIRE_FALSE(whole.truncated());
    for (std::size_t n = 0; n < full.size(); ++n) {
        const std::span<const std::uint8_t> part(full.data(), n);
        const auto t = LineTable::decode(part, 1);
        CHECK(check_invariants(t));
        // Cut at an entry boundary: a valid shorter table. Cut inside an entry: flagged.
        const bool at_boundary = (full[n] & 0x80) != 0;
        if (at_boundary) {
            CHECK_FALSE(t.truncated());
        } else if (!t.truncated()) {
            // Only an entry without operand bytes can end exactly here; there are none inside.
            FAIL_CHECK("cut at " << n << " of " << full.size() << " not flagged");
        }
        // What was decoded is a prefix of the full decode (the last range may be shorter).
        for (std::size_t i = 0; i < t.ranges().size(); ++i) {
            const auto& a = t.ranges()[i];
            const auto& b = whole.ranges()[i];
            CHECK(a.start == b.start);
            CHECK(a.line == b.line);
            CHECK(a.end <= b.end);
        }
    }
}

TEST_CASE("linetable: garbage never crashes or hangs") {
    SUBCASE("all 0xff") {
        // 0xff is a no-location entry of 8 units, so a table of them is valid.
        const std::vector<std::uint8_t> ff(4096, 0xff);
        const auto t = LineTable::decode(ff, 1);
        CHECK_FALSE(t.truncated());
        CHECK(t.ranges().size() == 1);
        CHECK(t.code_bytes() == 4096u * 16u);
        CHECK(t.line_for_offset(100) == -1);
    }
    SUBCASE("all 0x7f (no entry start)") {
        const std::vector<std::uint8_t> t7(100, 0x7f);
        const auto t = LineTable::decode(t7, 1);
        CHECK(t.truncated());
        CHECK(t.ranges().empty());
    }
    SUBCASE("long form whose varints run off the end") {
        const std::vector<std::uint8_t> table = {0x80 | (14 << 3), 0x40, 0x40, 0x40};
        const auto t = LineTable::decode(table, 1);
        CHECK(t.truncated());
        CHECK(t.ranges().empty());
    }
    SUBCASE("entry start where an operand was expected") {
        const std::vector<std::uint8_t> table = {0x80 | (10 << 3), 0x01, 0x80, 0x01};
        const auto t = LineTable::decode(table, 1);
        CHECK(t.truncated());
        CHECK(t.ranges().empty());
    }
    SUBCASE("random bytes") {
        std::mt19937 rng(12345);
        std::size_t flagged = 0;
        for (int round = 0; round < 3000; ++round) {
            std::vector<std::uint8_t> buf(rng() % 200);
            for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
            if (round % 2 == 0 && !buf.empty()) buf[0] |= 0x80;
            const auto t = LineTable::decode(buf, static_cast<int>(rng() % 100000));
            CHECK(check_invariants(t));
            for (int k = 0; k < 8; ++k) (void)t.line_for_offset(static_cast<std::uint32_t>(rng()));
            if (t.truncated()) ++flagged;
        }
        CHECK(flagged > 2000);  // random bytes are nearly always malformed
    }
    SUBCASE("mutated real table") {
        const auto& full = sample_table();
        std::mt19937 rng(777);
        for (int round = 0; round < 2000; ++round) {
            auto buf = full;
            for (int k = 0; k < 3; ++k) buf[rng() % buf.size()] = static_cast<std::uint8_t>(rng());
            const auto t = LineTable::decode(buf, 1);
            CHECK(check_invariants(t));
            for (const auto& r : t.ranges()) CHECK(r.line >= -1);
        }
    }
}
