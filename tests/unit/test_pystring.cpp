// decode_pystring against str objects dumped from real interpreters
// (tools/gen_pystring_fixtures.py).
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "symbolizer/cpython/layout.hpp"
#include "symbolizer/cpython/pystring.hpp"

#ifndef LOOPSPY_TEST_DATA
#define LOOPSPY_TEST_DATA "tests/data"
#endif

using loopspy::decode_pystring;
using loopspy::UnicodeLayout;

namespace {

std::vector<std::byte> bytes_from_hex(const std::string& hex) {
    std::vector<std::byte> out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        out.push_back(static_cast<std::byte>(std::stoul(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}

std::string string_from_hex(const std::string& hex) {
    std::string out;
    for (auto b : bytes_from_hex(hex)) out.push_back(static_cast<char>(b));
    return out;
}

nlohmann::json load_fixture(const std::string& version) {
    const std::string path = std::string(LOOPSPY_TEST_DATA) + "/pystrings/" + version + ".json";
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot open " << path);
    return nlohmann::json::parse(in);
}

// The first `n` code points of a valid UTF-8 string.
std::string utf8_prefix(const std::string& s, std::size_t n) {
    std::size_t i = 0;
    for (std::size_t count = 0; i < s.size() && count < n; ++count) {
        const auto c = static_cast<unsigned char>(s[i]);
        i += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    }
    return s.substr(0, i);
}

void check_version(const std::string& version, int minor) {
    const auto doc = load_fixture(version);
    const auto layout_opt = loopspy::unicode_layout_for(3, minor);
    REQUIRE(layout_opt.has_value());
    const UnicodeLayout layout = *layout_opt;

    // The compiled-in layout agrees with what the interpreter shows through documented APIs.
    const auto& derived = doc.at("derived_layout");
    CHECK(layout.length_offset == derived.at("length_offset").get<std::uint64_t>());
    CHECK(layout.state_offset == derived.at("state_offset").get<std::uint64_t>());
    CHECK(layout.ascii_object_size == derived.at("ascii_object_size").get<std::uint64_t>());
    CHECK(layout.compact_object_size == derived.at("compact_object_size").get<std::uint64_t>());
    // PyUnicodeObject is PyCompactUnicodeObject plus the data pointer.
    CHECK(layout.compact_object_size + 8 == derived.at("str_basicsize").get<std::uint64_t>());

    std::size_t decoded = 0;
    for (const auto& s : doc.at("strings")) {
        const std::string label = version + " " + s.at("label").get<std::string>();
        CAPTURE(label);
        const auto object = bytes_from_hex(s.at("object").get<std::string>());
        const std::string expected = string_from_hex(s.at("expected_utf8").get<std::string>());
        const auto length = s.at("length").get<std::size_t>();

        if (!s.at("compact").get<bool>()) {
            const auto r = decode_pystring(object, layout);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().kind == loopspy::ErrorKind::BadInput);
            CHECK(r.error().message.find("compact") != std::string::npos);
            continue;
        }

        // Whole string.
        const auto full = decode_pystring(object, layout, 1'000'000);
        if (!full.ok()) FAIL(full.error().message);
        CHECK(*full == expected);
        ++decoded;

        // The size helpers name exactly the bytes needed (header + characters, no NUL).
        const auto need = loopspy::pystring_read_size(object, layout, 1'000'000);
        REQUIRE(need.ok());
        CHECK(*need <= object.size());
        {
            const std::span<const std::byte> exact(object.data(), *need);
            const auto r = decode_pystring(exact, layout, 1'000'000);
            REQUIRE(r.ok());
            CHECK(*r == expected);
        }

        // Default bound and a small bound: cut to max_chars code points plus "…".
        const auto bounded = decode_pystring(object, layout);
        REQUIRE(bounded.ok());
        if (length > 1024) {
            CHECK(*bounded == utf8_prefix(expected, 1024) + "\xE2\x80\xA6");
        } else {
            CHECK(*bounded == expected);
        }
        if (length > 3) {
            const auto need3 = loopspy::pystring_read_size(object, layout, 3);
            REQUIRE(need3.ok());
            const std::span<const std::byte> part(object.data(), *need3);
            const auto r = decode_pystring(part, layout, 3);
            REQUIRE(r.ok());
            CHECK(*r == utf8_prefix(expected, 3) + "\xE2\x80\xA6");
        }

        // Every truncation short of the needed bytes is an error, never a crash or a wrong text.
        for (std::size_t n = 0; n < *need; ++n) {
            const std::span<const std::byte> part(object.data(), n);
            const auto r = decode_pystring(part, layout, 1'000'000);
            if (r.ok()) {
                FAIL_CHECK("truncated to " << n << " of " << *need << " bytes decoded as ok");
                break;
            }
        }
    }
    CHECK(decoded >= 10);
}

}  // namespace

TEST_CASE("pystring: 3.8 objects") { check_version("3.8", 8); }
TEST_CASE("pystring: 3.9 objects") { check_version("3.9", 9); }
TEST_CASE("pystring: 3.10 objects") { check_version("3.10", 10); }
TEST_CASE("pystring: 3.11 objects") { check_version("3.11", 11); }
TEST_CASE("pystring: 3.12 objects") { check_version("3.12", 12); }
TEST_CASE("pystring: 3.13 objects") { check_version("3.13", 13); }
TEST_CASE("pystring: 3.14 objects") { check_version("3.14", 14); }
TEST_CASE("pystring: 3.15 objects") { check_version("3.15", 15); }

TEST_CASE("pystring: layouts by version") {
    CHECK_FALSE(loopspy::unicode_layout_for(3, 7).has_value());
    CHECK(loopspy::unicode_layout_for(3, 8)->ascii_object_size == 48);
    CHECK(loopspy::unicode_layout_for(3, 11)->ascii_object_size == 48);
    CHECK(loopspy::unicode_layout_for(3, 14)->ascii_object_size == 40);
    CHECK(loopspy::unicode_layout_for(3, 15)->ascii_object_size == 40);
    CHECK_FALSE(loopspy::unicode_layout_for(3, 16).has_value());
    CHECK_FALSE(loopspy::unicode_layout_for(3, 13, /*free_threaded=*/true).has_value());
    CHECK_FALSE(loopspy::unicode_layout_for(2, 7).has_value());
}

TEST_CASE("pystring: layouts agree with the generated per-version tables") {
    for (int minor = 11; minor <= 15; ++minor) {
        CAPTURE(minor);
        const loopspy::PythonLayout* g = loopspy::python_layout(minor);
        REQUIRE(g != nullptr);
        const auto l = loopspy::unicode_layout_for(3, minor);
        REQUIRE(l.has_value());
        CHECK(l->length_offset == g->unicode_length);
        CHECK(l->state_offset == g->unicode_state);
        CHECK(l->ascii_object_size == g->ascii_object_size);
        CHECK(l->compact_object_size == g->compact_unicode_object_size);
        CHECK(l->kind_shift == g->unicode_kind_shift);
        CHECK(l->compact_bit == g->unicode_compact_bit);
        CHECK(l->ascii_bit == g->unicode_ascii_bit);
    }
}

TEST_CASE("pystring: synthetic objects") {
    const UnicodeLayout layout = loopspy::kUnicodeLayout312;
    // Builds a compact object: header + characters of `kind` bytes each.
    auto make = [&](std::uint64_t length, unsigned kind, bool ascii, bool compact,
                    const std::vector<std::uint32_t>& chars, std::uint32_t padding_garbage = 0xA5A5A500u) {
        std::vector<std::byte> obj(ascii ? layout.ascii_object_size : layout.compact_object_size);
        for (int i = 0; i < 8; ++i) obj[layout.length_offset + i] = static_cast<std::byte>(length >> (8 * i));
        std::uint32_t state = (kind << layout.kind_shift) | (compact ? 1u << layout.compact_bit : 0) |
                              (ascii ? 1u << layout.ascii_bit : 0) | padding_garbage;
        for (int i = 0; i < 4; ++i) obj[layout.state_offset + i] = static_cast<std::byte>(state >> (8 * i));
        for (auto c : chars) {
            for (unsigned i = 0; i < kind; ++i) obj.push_back(static_cast<std::byte>(c >> (8 * i)));
        }
        return obj;
    };

    SUBCASE("invalid kinds") {
        for (unsigned kind : {0u, 3u, 5u, 6u, 7u}) {
            CAPTURE(kind);
            const auto obj = make(1, kind, false, true, {});
            CHECK_FALSE(decode_pystring(obj, layout).ok());
        }
        // ASCII flag with a wide kind.
        CHECK_FALSE(decode_pystring(make(1, 2, true, true, {0x41}), layout).ok());
    }
    SUBCASE("not compact") {
        CHECK_FALSE(decode_pystring(make(1, 1, true, false, {0x41}), layout).ok());
    }
    SUBCASE("negative or huge length") {
        CHECK_FALSE(decode_pystring(make(~0ull, 1, true, true, {0x41}), layout).ok());
        const auto r = decode_pystring(make(1ull << 62, 4, false, true, {0x41}), layout);
        CHECK_FALSE(r.ok());
        // With a small bound only the first characters are needed.
        const auto r2 = decode_pystring(make(1ull << 62, 4, false, true, {0x41}), layout, 1);
        REQUIRE(r2.ok());
        CHECK(*r2 == "A\xE2\x80\xA6");
        CHECK(loopspy::pystring_bytes_needed(layout, ~0ull >> 1, 4, false, ~std::size_t{0}) == ~0ull);
    }
    SUBCASE("code points without a UTF-8 form become U+FFFD") {
        CHECK(*decode_pystring(make(2, 1, true, true, {0x80, 0x41}), layout) == "\xEF\xBF\xBD" "A");
        CHECK(*decode_pystring(make(2, 2, false, true, {0xDC00, 0xD83D}), layout) ==
              "\xEF\xBF\xBD\xEF\xBF\xBD");
        CHECK(*decode_pystring(make(2, 4, false, true, {0x110000, 0x1F600}), layout) ==
              "\xEF\xBF\xBD\xF0\x9F\x98\x80");
    }
    SUBCASE("max_chars zero") {
        CHECK(*decode_pystring(make(2, 1, true, true, {0x41, 0x42}), layout, 0) == "\xE2\x80\xA6");
        CHECK(*decode_pystring(make(0, 1, true, true, {}), layout, 0) == "");
    }
    SUBCASE("a layout with bits out of range is rejected, not undefined behaviour") {
        UnicodeLayout bad = layout;
        bad.kind_shift = 40;
        CHECK_FALSE(decode_pystring(make(1, 1, true, true, {0x41}), bad).ok());
    }
}
