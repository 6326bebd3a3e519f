#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "reports/collapsed.hpp"
#include "reports/text.hpp"

using namespace loopspy;

TEST_CASE("escape_collapsed_frame: separators and control characters") {
    CHECK(escape_collapsed_frame("main (app.py:10)") == "main (app.py:10)");
    CHECK(escape_collapsed_frame("a;b;c") == "a,b,c");
    CHECK(escape_collapsed_frame("line1\nline2") == "line1 line2");
    CHECK(escape_collapsed_frame("a\r\nb") == "a  b");
    CHECK(escape_collapsed_frame("tab\there") == "tab here");
    CHECK(escape_collapsed_frame(std::string("nul\0x", 5)) == "nul x");
    CHECK(escape_collapsed_frame("del\x7f") == "del ");
    CHECK(escape_collapsed_frame("\x1b[31mred") == " [31mred");
    CHECK(escape_collapsed_frame("") == "<empty>");
    CHECK(escape_collapsed_frame("<module> (x.py:1) 123") == "<module> (x.py:1) 123");
}

TEST_CASE("escape_collapsed_frame: UTF-8") {
    // Non-ASCII is kept as is.
    CHECK(escape_collapsed_frame("caf\xC3\xA9 (\xE6\x97\xA5\xE6\x9C\xAC.py:1) \xF0\x9F\x90\x8D") ==
          "caf\xC3\xA9 (\xE6\x97\xA5\xE6\x9C\xAC.py:1) \xF0\x9F\x90\x8D");
    const std::string fffd = "\xEF\xBF\xBD";
    CHECK(escape_collapsed_frame("a\xFF" "b") == "a" + fffd + "b");           // impossible byte
    CHECK(escape_collapsed_frame("a\x80" "b") == "a" + fffd + "b");           // stray continuation
    CHECK(escape_collapsed_frame("a\xC3") == "a" + fffd);                     // truncated at the end
    CHECK(escape_collapsed_frame("\xE6\x97;x") == fffd + ",x");               // truncated, then ';'
    CHECK(escape_collapsed_frame("\xC0\xAF") == fffd + fffd);                 // overlong '/'
    CHECK(escape_collapsed_frame("\xED\xA0\x80") == fffd + fffd + fffd);      // surrogate U+D800
    CHECK(escape_collapsed_frame("\xF4\x90\x80\x80") == fffd + fffd + fffd + fffd);  // > U+10FFFF
    CHECK(sanitize_utf8("ok \xE2\x82\xAC") == "ok \xE2\x82\xAC");
}

TEST_CASE("render_collapsed: merging, zero weights and ordering") {
    std::vector<WeightedStack> stacks = {
        {{"thread T (2)", "b (b.py:1)"}, 5},
        {{"thread T (1)", "main (a.py:1)", "f (a.py:2)"}, 10},
        {{"thread T (1)", "main (a.py:1)"}, 0},
        {{"thread T (1)", "main (a.py:1)", "f (a.py:2)"}, 7},
        {{"thread T (1)", "main (a.py:1)", "g;h"}, 3},
        {{"thread T (1)", "main (a.py:1)", "g,h"}, 4},  // identical to the previous one once escaped
        {{}, 99},                                       // no frames: dropped
    };
    const std::string expected =
        "thread T (1);main (a.py:1);f (a.py:2) 17\n"
        "thread T (1);main (a.py:1);g,h 7\n"
        "thread T (2);b (b.py:1) 5\n";
    CHECK(render_collapsed(stacks) == expected);

    std::mt19937 rng(42);
    for (int i = 0; i < 10; ++i) {
        std::shuffle(stacks.begin(), stacks.end(), rng);
        CHECK(render_collapsed(stacks) == expected);
    }
    CHECK(render_collapsed({}) == "");
    CHECK(render_collapsed({{{"a"}, 0}}) == "");
}

TEST_CASE("render_collapsed: byte order puts non-ASCII after ASCII") {
    const std::string out = render_collapsed({{{"\xC3\xA9t\xC3\xA9"}, 1}, {{"z"}, 1}, {{"A"}, 1}});
    CHECK(out == "A 1\nz 1\n\xC3\xA9t\xC3\xA9 1\n");
}

TEST_CASE("render then parse round trip") {
    const std::vector<WeightedStack> stacks = {
        {{"thread MainThread (1234)", "main (app.py:3)", "handler; nasty\nname (app.py:9)"}, 1500},
        {{"thread MainThread (1234)", "main (app.py:3)", "ends with number 123"}, 42},
        {{"thread worker-\xC3\xA9 (7)", "<idle>"}, 18446744073709551615ULL},
        {{"thread x (1)", ""}, 1},
    };
    const std::string text = render_collapsed(stacks);
    auto parsed = parse_collapsed(text);
    REQUIRE(parsed.ok());
    REQUIRE(parsed->size() == 4);
    // Sorted by stack text.
    CHECK((*parsed)[0].frames ==
          std::vector<std::string>{"thread MainThread (1234)", "main (app.py:3)", "ends with number 123"});
    CHECK((*parsed)[0].weight == 42);
    CHECK((*parsed)[1].frames ==
          std::vector<std::string>{"thread MainThread (1234)", "main (app.py:3)", "handler, nasty name (app.py:9)"});
    CHECK((*parsed)[1].weight == 1500);
    CHECK((*parsed)[2].frames == std::vector<std::string>{"thread worker-\xC3\xA9 (7)", "<idle>"});
    CHECK((*parsed)[2].weight == 18446744073709551615ULL);
    CHECK((*parsed)[3].frames == std::vector<std::string>{"thread x (1)", "<empty>"});

    // Rendering the parsed lines again gives the same text.
    std::vector<WeightedStack> again;
    for (const auto& line : *parsed) again.push_back({line.frames, line.weight});
    CHECK(render_collapsed(again) == text);
}

TEST_CASE("parse_collapsed: accepted forms") {
    auto r = parse_collapsed("a;b 1\r\n\nc 2\nframe ending in space  3");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 3);
    CHECK((*r)[0].frames == std::vector<std::string>{"a", "b"});
    CHECK((*r)[1].frames == std::vector<std::string>{"c"});
    CHECK((*r)[1].weight == 2);
    CHECK((*r)[2].frames == std::vector<std::string>{"frame ending in space "});
    CHECK((*r)[2].weight == 3);
    auto empty = parse_collapsed("");
    REQUIRE(empty.ok());
    CHECK(empty->empty());
}

TEST_CASE("parse_collapsed: malformed lines") {
    auto expect_error = [](std::string_view text, std::string_view line_hint) {
        auto r = parse_collapsed(text);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::BadInput);
        CHECK(r.error().message.find(line_hint) != std::string::npos);
    };
    expect_error("a;b\n", "line 1");                   // no weight at all
    expect_error("a;b 1\na;b\n", "line 2");            // second line without weight
    expect_error("a;b x12\n", "line 1");               // non-numeric weight
    expect_error("a;b 12x\n", "line 1");               // trailing junk
    expect_error("a;b -5\n", "line 1");                // negative
    expect_error("a;b +5\n", "line 1");                // sign
    expect_error("a;b 1.5\n", "line 1");               // not an integer
    expect_error("a;b \n", "line 1");                  // trailing space, empty weight
    expect_error("a;b 99999999999999999999\n", "line 1");  // overflow
    expect_error(" 5\n", "line 1");                    // empty stack
    expect_error("a;;b 5\n", "line 1");                // empty frame
    expect_error(";a 5\n", "line 1");
    expect_error("a; 5\n", "line 1");
}
