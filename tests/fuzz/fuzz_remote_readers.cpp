// libFuzzer target for what the symbolizer reads out of a target's memory: code objects (names,
// file, line table), strings, sets (the task sets), coroutine chains, dicts and attributes,
// asyncio's task containers, and _Py_DebugOffsets (scripts/fuzz.sh builds and runs it).
//
// The fake target is this process: the input is copied into a region mapped at a fixed address
// (RemoteMemory reads it with process_vm_readv like any other process's memory), beyond which
// nothing is mapped. So that mutations make pointers easily, every aligned 8-byte word whose top
// two bytes are 0xFE 0xED is a pointer into the region (its low bits an offset). Without a
// corpus, each input is also laid over a sound object graph (a code object with its strings and
// line table, a set, a coroutine) built in the region first, so mutations start from objects
// the readers accept.
//
// Input: byte 0 picks the version (3.8-3.15) and whether to lay the sound graph first; the rest
// is the memory image (at most the region's size).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "symbolizer/asyncio/asyncio_tasks.hpp"
#include "symbolizer/asyncio/coroutine_chain.hpp"
#include "symbolizer/cpython/debug_offsets.hpp"
#include "symbolizer/cpython/interpreter.hpp"
#include "symbolizer/cpython/object_layout.hpp"
#include "symbolizer/cpython/py_objects.hpp"
#include "symbolizer/cpython/pystring.hpp"
#include "symbolizer/cpython/type_names.hpp"
#include "symbolizer/frames/code_symbolizer.hpp"
#include "symbolizer/frames/linetable.hpp"

using namespace loopspy;

namespace {

constexpr std::uint64_t kBase = 0x5a0000000000;
constexpr std::size_t kSize = 64 * 1024;
constexpr std::uint64_t kPointerTag = 0xFEEDull << 48;

std::byte* region() {
    static std::byte* r = [] {
        void* p = ::mmap(reinterpret_cast<void*>(kBase), kSize, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (p != reinterpret_cast<void*>(kBase)) std::abort();
        return static_cast<std::byte*>(p);
    }();
    return r;
}

template <typename T>
void put(std::size_t off, T v) {
    if (off + sizeof(T) <= kSize) std::memcpy(region() + off, &v, sizeof(T));
}

/// A field of the object at `object`, unless the version has no such field.
template <typename T>
void put_field(std::size_t object, std::uint64_t field, T v) {
    if (field != kNone) put<T>(object + field, v);
}
std::uint64_t at(std::size_t off) { return kBase + off; }

// Where the sound graph's objects are.
constexpr std::size_t kType = 0x100, kTypeName = 0x200, kFile = 0x400, kName = 0x500, kTable = 0x600, kCode = 0x800,
                      kSet = 0x1000, kSetTable = 0x1100, kCoro = 0x2000, kDict = 0x3000;

void write_str(const PythonLayout& l, std::size_t off, const char* text) {
    const std::size_t n = std::strlen(text);
    put<std::int64_t>(off + l.unicode_length, static_cast<std::int64_t>(n));
    put<std::uint32_t>(off + l.unicode_state,
                       (1u << l.unicode_kind_shift) | (1u << l.unicode_compact_bit) | (1u << l.unicode_ascii_bit));
    std::memcpy(region() + off + l.ascii_object_size, text, n);
}

void write_bytes_object(const PythonLayout& l, std::size_t off, const std::uint8_t* data, std::size_t n) {
    put<std::int64_t>(off + l.bytes_ob_size, static_cast<std::int64_t>(n));
    std::memcpy(region() + off + l.bytes_ob_sval, data, n);
}

/// A code object named "handler" in "app.py" with a line table, a set of three keys, a
/// suspended coroutine whose frame runs that code.
void lay_sound_graph(const PythonLayout& l) {
    put<std::uint64_t>(kType + l.type_name, at(kTypeName));
    std::memcpy(region() + kTypeName, "code\0", 5);
    write_str(l, kFile, "app.py");
    write_str(l, kName, "handler");
    const std::uint8_t table[] = {0xf0, 0x03, 0xd8, 0x04, 0x05, 0xd9, 0x06, 0x07, 0xe8, 0x0e};
    write_bytes_object(l, kTable, table, sizeof table);
    put<std::uint64_t>(kCode + l.object_type, at(kType));
    put<std::uint64_t>(kCode + l.code_filename, at(kFile));
    put<std::uint64_t>(kCode + l.code_name, at(kName));
    put_field<std::uint64_t>(kCode, l.code_qualname, at(kName));
    put<std::uint64_t>(kCode + l.code_linetable, at(kTable));
    put<std::int32_t>(kCode + l.code_firstlineno, 10);
    put<std::uint32_t>(kCode + l.code_flags, 0x80);
    put_field<std::uint64_t>(kCode, l.code_code, at(kTable));  // before 3.11: co_code, a bytes object
    // A set: ob_type, then (as in setobject.h) fill, used, mask, table; three keys.
    put<std::uint64_t>(kSet + 16, 3);
    put<std::uint64_t>(kSet + 24, 3);
    put<std::uint64_t>(kSet + 32, 7);
    put<std::uint64_t>(kSet + 40, at(kSetTable));
    for (int i = 0; i < 3; ++i) put<std::uint64_t>(kSetTable + 16 * i, at(kCoro + 0x100 * i));
    // A coroutine whose frame runs the code: embedded (3.11+), or a frame object of its own.
    put<std::uint64_t>(kCoro + l.object_type, at(kType));
    put<std::uint64_t>(kCoro + l.gen_name, at(kName));
    put<std::uint64_t>(kCoro + l.gen_qualname, at(kName));
    if (l.gen_frame != kNone) {
        constexpr std::size_t kFrame = kCoro + 0x80;
        put<std::uint64_t>(kCoro + l.gen_frame, at(kFrame));
        put<std::uint64_t>(kFrame + l.frame_code, at(kCode));
        put<std::uint64_t>(kFrame + l.frame_gen, at(kCoro));
        put<std::int32_t>(kFrame + l.frame_lasti, 4);
        put_field<std::int8_t>(kFrame, l.frame_state, l.gen_state_suspended);
        put<std::uint64_t>(kFrame + l.frame_valuestack, at(kFrame + 0x100));
        put_field<std::int32_t>(kFrame, l.frame_stackdepth, 1);
        put_field<std::uint64_t>(kFrame, l.frame_stacktop_ptr, at(kFrame + 0x108));
    } else {
        put<std::int8_t>(kCoro + l.gen_frame_state, l.gen_state_suspended);
        put<std::uint64_t>(kCoro + l.gen_iframe + l.frame_code, at(kCode));
        put<std::uint8_t>(kCoro + l.gen_iframe + l.frame_owner, l.owner_generator);
    }
}

/// The input laid into the region, its tagged words made pointers into it.
void lay_input(const std::uint8_t* data, std::size_t size) {
    const std::size_t n = std::min(size, kSize);
    for (std::size_t i = 0; i < n; ++i) {
        if (data[i] != 0) region()[i] = static_cast<std::byte>(data[i]);  // zeros leave the graph as it is
    }
    for (std::size_t off = 0; off + 8 <= n; off += 8) {
        std::uint64_t w;
        std::memcpy(&w, region() + off, 8);
        if ((w & 0xFFFF000000000000ull) == kPointerTag) put<std::uint64_t>(off, kBase + (w & 0xFFFFFF) % kSize);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const int minor = 8 + data[0] % 8;
    const bool sound_first = (data[0] & 0x80) == 0;
    const PythonLayout* generated = python_layout(minor);
    const ObjectLayout* objects = object_layout(minor);
    if (!generated || !objects) return 0;
    std::memset(region(), 0, kSize);
    if (sound_first) lay_sound_graph(*generated);
    lay_input(data + 1, size - 1);
    const std::span<const std::byte> image(region(), std::min(size - 1, kSize));

    RemoteMemory memory(Pid{static_cast<int>(::getpid())});
    Interpreter interp;
    interp.version = PythonVersion{0x03000000u | (static_cast<std::uint32_t>(minor) << 16) | 0x01F0};
    interp.layout = *generated;
    interp.runtime = RemoteAddr{at(0x4000)};
    interp.code_type = RemoteAddr{at(kType)};

    // _Py_DebugOffsets over the image (3.13+ read it at start and trust nothing of it).
    PythonLayout from_offsets = *generated;
    (void)parse_debug_offsets(image, from_offsets);
    (void)debug_offsets_version_at(image);

    // Strings and line tables straight from the bytes.
    const UnicodeLayout unicode = unicode_layout_of(*generated);
    (void)decode_pystring(image, unicode, 1 + data[0] % 64);
    (void)pystring_read_size(image, unicode);
    const auto table = std::span<const std::uint8_t>(data + 1, size - 1);
    const LineTable lines = LineTable::decode(table, static_cast<int>(data[0]) - 128);
    for (std::uint32_t off = 0; off < lines.code_bytes() + 4 && off < 4096; off += 2) (void)lines.line_for_offset(off);
    // Before 3.11: co_lnotab or the 3.10 table, closed at a code length the input picks.
    for (auto format : {LineTableFormat::Lnotab, LineTableFormat::Pairs310}) {
        const LineTable old = LineTable::decode(format, table, static_cast<int>(data[0]) - 128, data[0] * 64u);
        for (std::uint32_t off = 0; off < old.code_bytes() + 4 && off < 4096; off += 2) (void)old.line_for_offset(off);
    }

    // Code objects, at the sound graph's place and at the image's first pointer, twice across
    // generations (the re-check path).
    CodeSymbolizer code(memory, interp);
    for (int g = 0; g < 2; ++g) {
        if (const CodeInfo* info = code.code(CodeAddr{at(kCode)})) {
            (void)CodeSymbolizer::line_for(*info, static_cast<std::int32_t>(data[0]) * 2 - 2);
        }
        (void)code.code(CodeAddr{at(0)});
        code.new_generation();
    }

    // Sets, coroutine chains, dicts, attributes, the task containers.
    (void)read_set_keys(memory, RemoteAddr{at(kSet)}, 1 << 12);
    (void)read_set_keys(memory, RemoteAddr{at(0)}, 1 << 12);
    TypeNames types(memory, *generated);
    (void)read_coroutine_chain(memory, *generated, types, RemoteAddr{at(kCoro)}, 64);
    PyObjectReader objs(memory, interp, *objects, types);
    (void)objs.str(at(kName));
    (void)objs.dict_items(at(kDict));
    (void)objs.dict_get(at(kDict), "_all_tasks");
    (void)objs.attribute(at(kCoro), "_name");
    (void)objs.small_int(at(kSet));
    (void)objs.module_globals("asyncio.tasks");
    if (auto reader = make_task_reader(memory, interp)) (void)reader->read_tasks();
    return 0;
}
