// parse_debug_offsets against _PyRuntime heads dumped from real 3.13/3.14/3.15 interpreters
// (tools/dump_debug_offsets.py). Each real table must agree with the layout derived from the
// headers (symbolizer/cpython/layouts_generated.inc) on every field both carry.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "bpf/loopspy.h"
#include "symbolizer/cpython/debug_offsets.hpp"
#include "symbolizer/cpython/layout.hpp"

#ifndef LOOPSPY_TEST_DATA
#define LOOPSPY_TEST_DATA "tests/data"
#endif

using loopspy::DebugOffsetsInfo;
using loopspy::ErrorKind;
using loopspy::PythonLayout;

namespace {

std::vector<std::byte> load_fixture(int minor) {
    const std::string path = std::string(LOOPSPY_TEST_DATA) + "/debug_offsets/3." + std::to_string(minor) + ".bin";
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "missing fixture " << path);
    std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> out(raw.size());
    std::memcpy(out.data(), raw.data(), raw.size());
    return out;
}

void put_u64(std::vector<std::byte>& bytes, std::size_t at, uint64_t v) {
    REQUIRE(at + 8 <= bytes.size());
    std::memcpy(bytes.data() + at, &v, 8);
}

struct Field {
    const char* name;
    uint64_t PythonLayout::*member;
};

// Every uint64 member of PythonLayout.
const Field kAllFields[] = {
    {"runtime_interpreters_head", &PythonLayout::runtime_interpreters_head},
    {"interp_next", &PythonLayout::interp_next},
    {"interp_threads_head", &PythonLayout::interp_threads_head},
    {"interp_id", &PythonLayout::interp_id},
    {"tstate_next", &PythonLayout::tstate_next},
    {"tstate_interp", &PythonLayout::tstate_interp},
    {"tstate_thread_id", &PythonLayout::tstate_thread_id},
    {"tstate_native_thread_id", &PythonLayout::tstate_native_thread_id},
    {"tstate_cframe", &PythonLayout::tstate_cframe},
    {"cframe_current_frame", &PythonLayout::cframe_current_frame},
    {"tstate_current_frame", &PythonLayout::tstate_current_frame},
    {"frame_code", &PythonLayout::frame_code},
    {"frame_previous", &PythonLayout::frame_previous},
    {"frame_instr", &PythonLayout::frame_instr},
    {"frame_owner", &PythonLayout::frame_owner},
    {"frame_localsplus", &PythonLayout::frame_localsplus},
    {"frame_size", &PythonLayout::frame_size},
    {"code_flags", &PythonLayout::code_flags},
    {"code_argcount", &PythonLayout::code_argcount},
    {"code_firstlineno", &PythonLayout::code_firstlineno},
    {"code_filename", &PythonLayout::code_filename},
    {"code_name", &PythonLayout::code_name},
    {"code_qualname", &PythonLayout::code_qualname},
    {"code_linetable", &PythonLayout::code_linetable},
    {"code_firsttraceable", &PythonLayout::code_firsttraceable},
    {"code_code_adaptive", &PythonLayout::code_code_adaptive},
    {"code_size_no_bytecode", &PythonLayout::code_size_no_bytecode},
    {"unicode_length", &PythonLayout::unicode_length},
    {"unicode_state", &PythonLayout::unicode_state},
    {"ascii_object_size", &PythonLayout::ascii_object_size},
    {"compact_unicode_object_size", &PythonLayout::compact_unicode_object_size},
    {"bytes_ob_size", &PythonLayout::bytes_ob_size},
    {"bytes_ob_sval", &PythonLayout::bytes_ob_sval},
    {"gen_iframe", &PythonLayout::gen_iframe},
    {"gen_frame_state", &PythonLayout::gen_frame_state},
    {"gen_name", &PythonLayout::gen_name},
    {"gen_qualname", &PythonLayout::gen_qualname},
    {"object_type", &PythonLayout::object_type},
    {"type_name", &PythonLayout::type_name},
};

constexpr uint64_t kSentinel = 0xdead'beefULL;

// A layout for `minor` with every offset replaced by the sentinel, so that after parsing we can
// tell the fields the table carried (overwritten) from the ones it left alone.
PythonLayout sentinel_layout(int minor) {
    PythonLayout l = *loopspy::python_layout(minor);
    for (const Field& f : kAllFields) l.*f.member = kSentinel;
    return l;
}

bool carried(const PythonLayout& parsed, const Field& f) { return parsed.*f.member != kSentinel; }

}  // namespace

TEST_CASE("generated layouts exist for 3.8 to 3.15 only") {
    CHECK(loopspy::python_layout(7) == nullptr);
    CHECK(loopspy::python_layout(16) == nullptr);
    for (int minor = 8; minor <= 15; ++minor) {
        const PythonLayout* l = loopspy::python_layout(minor);
        REQUIRE(l != nullptr);
        CHECK(l->minor == static_cast<uint32_t>(minor));
        // The frame chain exists in exactly one of the three shapes.
        if (minor <= 10) {
            // PyFrameObject chains: f_back right after the var-object header, then f_code; f_lasti
            // counts bytes until 3.10 counts code units.
            CHECK(l->tstate_frame != loopspy::kNone);
            CHECK(l->tstate_cframe == loopspy::kNone);
            CHECK(l->tstate_current_frame == loopspy::kNone);
            CHECK(l->frame_previous == 24);
            CHECK(l->frame_code == 32);
            CHECK(l->frame_lasti != loopspy::kNone);
            CHECK(l->lasti_unit == (minor == 10 ? 2 : 1));
            CHECK(l->linetable_format == (minor == 10 ? 2 : 1));
            CHECK(l->tstate_native_thread_id == loopspy::kNone);
            CHECK(l->gen_frame == 16);
        } else if (minor <= 12) {
            CHECK(l->tstate_frame == loopspy::kNone);
            CHECK(l->frame_lasti == loopspy::kNone);
            CHECK(l->tstate_cframe != loopspy::kNone);
            CHECK(l->cframe_current_frame != loopspy::kNone);
            CHECK(l->tstate_current_frame == loopspy::kNone);
        } else {
            CHECK(l->tstate_cframe == loopspy::kNone);
            CHECK(l->tstate_current_frame != loopspy::kNone);
        }
    }
}

TEST_CASE("read size covers every supported table") {
    CHECK(loopspy::debug_offsets_read_size() == 888);  // sizeof(_Py_DebugOffsets) of 3.15
    for (int minor = 13; minor <= 15; ++minor) {
        CHECK(load_fixture(minor).size() >= loopspy::debug_offsets_read_size());
    }
}

TEST_CASE("real _Py_DebugOffsets agree with the header-derived layouts") {
    for (int minor = 13; minor <= 15; ++minor) {
        CAPTURE(minor);
        const std::vector<std::byte> bytes = load_fixture(minor);
        const uint64_t version = loopspy::debug_offsets_version_at(bytes);
        CHECK(((version >> 24) & 0xff) == 3);
        CHECK(static_cast<int>((version >> 16) & 0xff) == minor);

        const PythonLayout& expected = *loopspy::python_layout(minor);
        PythonLayout parsed = sentinel_layout(minor);
        auto info = loopspy::parse_debug_offsets(bytes, parsed);
        REQUIRE_MESSAGE(info.ok(), info.error().message);
        CHECK(info->version_hex == version);
        CHECK_FALSE(info->free_threaded);

        int n_carried = 0;
        for (const Field& f : kAllFields) {
            if (!carried(parsed, f)) continue;
            ++n_carried;
            CAPTURE(f.name);
            CHECK(parsed.*f.member == expected.*f.member);
        }
        // The ones the profiler's hot path needs must come from the table itself.
        for (auto member : {&PythonLayout::runtime_interpreters_head, &PythonLayout::interp_threads_head,
                            &PythonLayout::tstate_current_frame, &PythonLayout::frame_code,
                            &PythonLayout::frame_previous, &PythonLayout::frame_instr,
                            &PythonLayout::frame_owner, &PythonLayout::code_qualname,
                            &PythonLayout::code_code_adaptive, &PythonLayout::unicode_state}) {
            CHECK(parsed.*member != kSentinel);
        }
        CHECK(n_carried >= 30);
        if (minor >= 14) {  // generator offsets joined the table in 3.14
            CHECK(parsed.gen_iframe == expected.gen_iframe);
            CHECK(parsed.gen_frame_state == expected.gen_frame_state);
        } else {
            CHECK(parsed.gen_iframe == kSentinel);
        }
        // Fields the table never carries stay as the caller set them.
        CHECK(parsed.gen_qualname == kSentinel);
        CHECK(parsed.code_flags == kSentinel);
        CHECK(parsed.tstate_cframe == kSentinel);
        CHECK(parsed.owner_generator == expected.owner_generator);
        CHECK(parsed.executable_tag_bits == expected.executable_tag_bits);
    }
}

TEST_CASE("parsing into the generated layout changes nothing") {
    for (int minor = 13; minor <= 15; ++minor) {
        CAPTURE(minor);
        PythonLayout l = *loopspy::python_layout(minor);
        REQUIRE(loopspy::parse_debug_offsets(load_fixture(minor), l).ok());
        CHECK(std::memcmp(&l, loopspy::python_layout(minor), sizeof l) == 0);
    }
}

TEST_CASE("a wrong cookie is rejected") {
    std::vector<std::byte> bytes = load_fixture(14);
    bytes[0] = std::byte{'y'};
    PythonLayout l = *loopspy::python_layout(14);
    auto r = loopspy::parse_debug_offsets(bytes, l);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::BadInput);
    CHECK(loopspy::debug_offsets_version_at(bytes) == 0);
}

TEST_CASE("versions before 3.13 and after the known ones are unsupported") {
    std::vector<std::byte> bytes = load_fixture(13);
    PythonLayout l = *loopspy::python_layout(13);

    put_u64(bytes, 8, 0x030c01f0);  // 3.12.1
    auto r = loopspy::parse_debug_offsets(bytes, l);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::UnsupportedPython);

    put_u64(bytes, 8, 0x031000a0);  // 3.16.0a
    r = loopspy::parse_debug_offsets(bytes, l);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::UnsupportedPython);

    put_u64(bytes, 8, 0x040d00f0);  // 4.13
    r = loopspy::parse_debug_offsets(bytes, l);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::UnsupportedPython);
}

TEST_CASE("a truncated buffer is rejected") {
    for (int minor = 13; minor <= 15; ++minor) {
        CAPTURE(minor);
        std::vector<std::byte> bytes = load_fixture(minor);
        PythonLayout l = *loopspy::python_layout(minor);
        for (std::size_t n : {std::size_t{0}, std::size_t{7}, std::size_t{16}, std::size_t{24}, std::size_t{500}}) {
            CAPTURE(n);
            auto r = loopspy::parse_debug_offsets(std::span(bytes).first(n), l);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().kind == ErrorKind::BadInput);
        }
    }
    // One byte short of the 3.15 table.
    std::vector<std::byte> bytes = load_fixture(15);
    PythonLayout l = *loopspy::python_layout(15);
    auto r = loopspy::parse_debug_offsets(std::span(bytes).first(887), l);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::BadInput);
}

TEST_CASE("an absurd offset is rejected and leaves the layout untouched") {
    for (int minor = 13; minor <= 15; ++minor) {
        CAPTURE(minor);
        std::vector<std::byte> bytes = load_fixture(minor);
        // runtime_state.interpreters_head is the third field after the 24-byte header in every
        // version: cookie[8], version, free_threaded, runtime_state {size, finalizing, head}.
        put_u64(bytes, 24 + 2 * 8, uint64_t{1} << 40);
        PythonLayout l = sentinel_layout(minor);
        auto r = loopspy::parse_debug_offsets(bytes, l);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::BadInput);
        CHECK(l.frame_previous == kSentinel);
        CHECK(l.runtime_interpreters_head == kSentinel);
    }
    // Just at the limit.
    std::vector<std::byte> bytes = load_fixture(14);
    put_u64(bytes, 40, 64 * 1024);
    PythonLayout l = *loopspy::python_layout(14);
    CHECK_FALSE(loopspy::parse_debug_offsets(bytes, l).ok());
    put_u64(bytes, 40, 64 * 1024 - 8);
    REQUIRE(loopspy::parse_debug_offsets(bytes, l).ok());
    CHECK(l.runtime_interpreters_head == 64 * 1024 - 8);
}

TEST_CASE("the free-threaded flag is reported") {
    std::vector<std::byte> bytes = load_fixture(14);
    put_u64(bytes, 16, 1);
    PythonLayout l = *loopspy::python_layout(14);
    auto r = loopspy::parse_debug_offsets(bytes, l);
    REQUIRE(r.ok());
    CHECK(r->free_threaded);
}

TEST_CASE("a layout for another minor is refused") {
    std::vector<std::byte> bytes = load_fixture(14);
    PythonLayout l = *loopspy::python_layout(13);
    auto r = loopspy::parse_debug_offsets(bytes, l);
    REQUIRE_FALSE(r.ok());
    CHECK(l.minor == 13);
}

// 3.8-3.10 have no _Py_DebugOffsets: the header-derived layouts against where each field was
// found in a live interpreter's own objects (tools/dump_frame_objects.py, which searches their
// memory for known values and reads nothing from the headers).
TEST_CASE("3.8-3.10 layouts agree with the fields found in live interpreters' objects") {
    for (int minor = 8; minor <= 10; ++minor) {
        CAPTURE(minor);
        const std::string path = std::string(LOOPSPY_TEST_DATA) + "/frame_objects/3." + std::to_string(minor) + ".json";
        std::ifstream in(path);
        REQUIRE_MESSAGE(in.good(), "cannot open " << path);
        const auto found = nlohmann::json::parse(in);
        const PythonLayout& l = *loopspy::python_layout(minor);
        auto at = [&](const char* field) { return found.at(field).get<std::uint64_t>(); };
        CHECK(l.tstate_frame == at("tstate_frame"));
        CHECK(l.frame_previous == at("frame_previous"));
        CHECK(l.frame_code == at("frame_code"));
        CHECK(l.frame_lasti == at("frame_lasti"));
        CHECK(l.lasti_unit == at("lasti_unit"));
        CHECK(l.frame_gen == at("frame_gen"));
        CHECK(l.gen_frame == at("gen_frame"));
        CHECK(l.code_firstlineno == at("code_firstlineno"));
        CHECK(l.code_filename == at("code_filename"));
        CHECK(l.code_name == at("code_name"));
        CHECK(l.code_code == at("code_code"));
        CHECK(l.code_linetable == at("code_linetable"));
        CHECK(l.code_size_no_bytecode == at("code_size"));
        CHECK(l.dictkeys_nentries == at("dictkeys_nentries"));
        // Every field the kernel's one read of a frame takes lies inside it.
        for (std::uint64_t off : {l.frame_previous, l.frame_code, l.frame_gen}) CHECK(off + 8 <= LOOPSPY_FRAME_READ_MAX);
        CHECK(l.frame_lasti + 4 <= LOOPSPY_FRAME_READ_MAX);
    }
}
