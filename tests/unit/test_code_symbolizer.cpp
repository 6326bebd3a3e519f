// When a cached code object stands and when it goes: the symbolizer reads fake code objects that
// this test writes into its own memory, laid out as CPython 3.12 lays them out.
#include <doctest/doctest.h>

#include "symbolizer/frames/code_symbolizer.hpp"
#include "tests/unit/fake_target.hpp"

using namespace loopspy;

using loopspy::testing::FakeTarget;
using Fixture = FakeTarget;

TEST_CASE("a code object is named from the target's memory and a different one at its address replaces it") {
    Fixture f;
    CodeSymbolizer s(f.memory, f.interp);
    f.write_code(Fixture::kCode, Fixture::kHandler, 10);
    CHECK(f.name_at(s, Fixture::kCode) == "handle_request");
    f.write_code(Fixture::kCode, Fixture::kRender, 40);
    f.generations(s, 1);
    CHECK(f.name_at(s, Fixture::kCode) == "render_page");
    f.generations(s, CodeSymbolizer::kYoungGenerations + 5);  // long-lived too
    f.write_code(Fixture::kCode, Fixture::kHandler, 10);
    f.generations(s, 1);
    CHECK(f.name_at(s, Fixture::kCode) == "handle_request");
}

TEST_CASE("young code that is freed is forgotten: its address is often reused at once") {
    Fixture f;
    CodeSymbolizer s(f.memory, f.interp);
    f.write_code(Fixture::kCode, Fixture::kHandler, 10);
    CHECK(f.name_at(s, Fixture::kCode) == "handle_request");
    f.free_code(Fixture::kCode);
    auto invalidations = s.invalidations();
    f.generations(s, 1);
    CHECK(s.invalidations() == invalidations + 1);
    CHECK(f.name_at(s, Fixture::kCode) == "<unknown>");
}

TEST_CASE("long-lived code freed at finalization keeps its name for the samples still to be named") {
    Fixture f;
    CodeSymbolizer s(f.memory, f.interp);
    f.write_code(Fixture::kCode, Fixture::kHandler, 10);
    CHECK(f.name_at(s, Fixture::kCode) == "handle_request");
    f.generations(s, CodeSymbolizer::kYoungGenerations);  // re-checked every generation of its youth
    f.free_code(Fixture::kCode);
    auto invalidations = s.invalidations();
    f.generations(s, 3);
    CHECK(f.name_at(s, Fixture::kCode) == "handle_request");
    CHECK(s.invalidations() == invalidations);
}

TEST_CASE("code of a process that is gone keeps its name, young or not") {
    Fixture f;
    CodeSymbolizer s(f.memory, f.interp);
    f.write_code(Fixture::kCode, Fixture::kHandler, 10);
    CHECK(f.name_at(s, Fixture::kCode) == "handle_request");
    f.heap.unmap();  // nothing can be read there any more, as in a process that has exited
    f.generations(s, 3);
    CHECK(f.name_at(s, Fixture::kCode) == "handle_request");
}

TEST_CASE("an address never seen as code is not named, readable or not") {
    Fixture f;
    CodeSymbolizer s(f.memory, f.interp);
    f.free_code(Fixture::kCode);
    CHECK(f.name_at(s, Fixture::kCode) == "<unknown>");
    f.heap.unmap();
    f.generations(s, 1);
    CHECK(f.name_at(s, Fixture::kCode + 512) == "<unknown>");
}
