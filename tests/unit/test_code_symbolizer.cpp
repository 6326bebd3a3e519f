// When a cached code object stands and when it goes: the symbolizer reads fake code objects that
// this test writes into its own memory, laid out as CPython 3.12 lays them out.
#include <doctest/doctest.h>

#include "symbolizer/frames/code_symbolizer.hpp"
#include "symbolizer/cpython/object_layout.hpp"
#include "symbolizer/cpython/py_objects.hpp"
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

TEST_CASE("a set whose mask is no table size is not read: UINT64_MAX wrapped to an empty table and read past it") {
    // Found by fuzz_remote_readers: `mask + 1 > max_slots` let UINT64_MAX through as 0 slots.
    Fixture f;
    const std::uint64_t set = f.heap.addr(8192), table = f.heap.addr(8192 + 256);
    loopspy::testing::put<std::uint64_t>(f.heap.at(8192), objects::kSetTable, table);
    loopspy::testing::put<std::uint64_t>(f.heap.at(8192 + 256), 0, 0x1234);  // one key in slot 0
    for (std::uint64_t mask : {~std::uint64_t{0}, std::uint64_t{5}, std::uint64_t{1} << 40}) {
        loopspy::testing::put<std::uint64_t>(f.heap.at(8192), objects::kSetMask, mask);
        CHECK_FALSE(read_set_keys(f.memory, RemoteAddr{set}, 1 << 16));
    }
    loopspy::testing::put<std::uint64_t>(f.heap.at(8192), objects::kSetMask, 7);
    auto keys = read_set_keys(f.memory, RemoteAddr{set}, 1 << 16);
    REQUIRE(keys);
    CHECK(*keys == std::vector<std::uint64_t>{0x1234});
}
