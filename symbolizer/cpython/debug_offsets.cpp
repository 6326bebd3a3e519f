#include "symbolizer/cpython/debug_offsets.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <string_view>

#include "core/types.hpp"

namespace loopspy {
namespace {

// The header of the table: char cookie[8]; uint64_t version; uint64_t free_threaded;
constexpr char kCookie[8] = {'x', 'd', 'e', 'b', 'u', 'g', 'p', 'y'};
constexpr std::size_t kVersionAt = 8;
constexpr std::size_t kFreeThreadedAt = 16;
constexpr std::size_t kFirstFieldAt = 24;
constexpr uint64_t kMaxOffset = 64 * 1024;

// The uint64 fields after the header, in declaration order, as "group.field". Transcribed from
// each version's headers (3.13: Include/internal/pycore_runtime.h; 3.14 and 3.15:
// Include/internal/pycore_debug_offsets.h). sizeof(_Py_DebugOffsets) from the same headers is
// checked against the field count below.

constexpr std::string_view kFields3_13[] = {
    "runtime_state.size", "runtime_state.finalizing", "runtime_state.interpreters_head",
    "interpreter_state.size", "interpreter_state.id", "interpreter_state.next",
    "interpreter_state.threads_head", "interpreter_state.gc", "interpreter_state.imports_modules",
    "interpreter_state.sysdict", "interpreter_state.builtins", "interpreter_state.ceval_gil",
    "interpreter_state.gil_runtime_state", "interpreter_state.gil_runtime_state_enabled",
    "interpreter_state.gil_runtime_state_locked", "interpreter_state.gil_runtime_state_holder",
    "thread_state.size", "thread_state.prev", "thread_state.next", "thread_state.interp",
    "thread_state.current_frame", "thread_state.thread_id", "thread_state.native_thread_id",
    "thread_state.datastack_chunk", "thread_state.status",
    "interpreter_frame.size", "interpreter_frame.previous", "interpreter_frame.executable",
    "interpreter_frame.instr_ptr", "interpreter_frame.localsplus", "interpreter_frame.owner",
    "code_object.size", "code_object.filename", "code_object.name", "code_object.qualname",
    "code_object.linetable", "code_object.firstlineno", "code_object.argcount",
    "code_object.localsplusnames", "code_object.localspluskinds", "code_object.co_code_adaptive",
    "pyobject.size", "pyobject.ob_type",
    "type_object.size", "type_object.tp_name", "type_object.tp_repr", "type_object.tp_flags",
    "tuple_object.size", "tuple_object.ob_item", "tuple_object.ob_size",
    "list_object.size", "list_object.ob_item", "list_object.ob_size",
    "dict_object.size", "dict_object.ma_keys", "dict_object.ma_values",
    "float_object.size", "float_object.ob_fval",
    "long_object.size", "long_object.lv_tag", "long_object.ob_digit",
    "bytes_object.size", "bytes_object.ob_size", "bytes_object.ob_sval",
    "unicode_object.size", "unicode_object.state", "unicode_object.length",
    "unicode_object.asciiobject_size",
    "gc.size", "gc.collecting",
};

constexpr std::string_view kFields3_14[] = {
    "runtime_state.size", "runtime_state.finalizing", "runtime_state.interpreters_head",
    "interpreter_state.size", "interpreter_state.id", "interpreter_state.next",
    "interpreter_state.threads_head", "interpreter_state.threads_main", "interpreter_state.gc",
    "interpreter_state.imports_modules", "interpreter_state.sysdict", "interpreter_state.builtins",
    "interpreter_state.ceval_gil", "interpreter_state.gil_runtime_state",
    "interpreter_state.gil_runtime_state_enabled", "interpreter_state.gil_runtime_state_locked",
    "interpreter_state.gil_runtime_state_holder", "interpreter_state.code_object_generation",
    "interpreter_state.tlbc_generation",
    "thread_state.size", "thread_state.prev", "thread_state.next", "thread_state.interp",
    "thread_state.current_frame", "thread_state.thread_id", "thread_state.native_thread_id",
    "thread_state.datastack_chunk", "thread_state.status",
    "interpreter_frame.size", "interpreter_frame.previous", "interpreter_frame.executable",
    "interpreter_frame.instr_ptr", "interpreter_frame.localsplus", "interpreter_frame.owner",
    "interpreter_frame.stackpointer", "interpreter_frame.tlbc_index",
    "code_object.size", "code_object.filename", "code_object.name", "code_object.qualname",
    "code_object.linetable", "code_object.firstlineno", "code_object.argcount",
    "code_object.localsplusnames", "code_object.localspluskinds", "code_object.co_code_adaptive",
    "code_object.co_tlbc",
    "pyobject.size", "pyobject.ob_type",
    "type_object.size", "type_object.tp_name", "type_object.tp_repr", "type_object.tp_flags",
    "tuple_object.size", "tuple_object.ob_item", "tuple_object.ob_size",
    "list_object.size", "list_object.ob_item", "list_object.ob_size",
    "set_object.size", "set_object.used", "set_object.table", "set_object.mask",
    "dict_object.size", "dict_object.ma_keys", "dict_object.ma_values",
    "float_object.size", "float_object.ob_fval",
    "long_object.size", "long_object.lv_tag", "long_object.ob_digit",
    "bytes_object.size", "bytes_object.ob_size", "bytes_object.ob_sval",
    "unicode_object.size", "unicode_object.state", "unicode_object.length",
    "unicode_object.asciiobject_size",
    "gc.size", "gc.collecting",
    "gen_object.size", "gen_object.gi_name", "gen_object.gi_iframe", "gen_object.gi_frame_state",
    "llist_node.next", "llist_node.prev",
    "debugger_support.eval_breaker", "debugger_support.remote_debugger_support",
    "debugger_support.remote_debugging_enabled", "debugger_support.debugger_pending_call",
    "debugger_support.debugger_script_path", "debugger_support.debugger_script_path_size",
};

constexpr std::string_view kFields3_15[] = {
    "runtime_state.size", "runtime_state.finalizing", "runtime_state.interpreters_head",
    "interpreter_state.size", "interpreter_state.id", "interpreter_state.next",
    "interpreter_state.threads_head", "interpreter_state.threads_main", "interpreter_state.gc",
    "interpreter_state.imports_modules", "interpreter_state.sysdict", "interpreter_state.builtins",
    "interpreter_state.ceval_gil", "interpreter_state.gil_runtime_state",
    "interpreter_state.gil_runtime_state_enabled", "interpreter_state.gil_runtime_state_locked",
    "interpreter_state.gil_runtime_state_holder", "interpreter_state.code_object_generation",
    "interpreter_state.tlbc_generation",
    "thread_state.size", "thread_state.prev", "thread_state.next", "thread_state.interp",
    "thread_state.current_frame", "thread_state.base_frame", "thread_state.last_profiled_frame",
    "thread_state.last_profiled_frame_seq", "thread_state.thread_id",
    "thread_state.native_thread_id", "thread_state.datastack_chunk", "thread_state.status",
    "thread_state.holds_gil", "thread_state.gil_requested", "thread_state.current_exception",
    "thread_state.exc_state",
    "err_stackitem.exc_value",
    "interpreter_frame.size", "interpreter_frame.previous", "interpreter_frame.executable",
    "interpreter_frame.instr_ptr", "interpreter_frame.localsplus", "interpreter_frame.owner",
    "interpreter_frame.stackpointer", "interpreter_frame.tlbc_index",
    "code_object.size", "code_object.filename", "code_object.name", "code_object.qualname",
    "code_object.linetable", "code_object.firstlineno", "code_object.argcount",
    "code_object.localsplusnames", "code_object.localspluskinds", "code_object.co_code_adaptive",
    "code_object.co_tlbc",
    "pyobject.size", "pyobject.ob_type",
    "type_object.size", "type_object.tp_name", "type_object.tp_repr", "type_object.tp_flags",
    "type_object.tp_basicsize", "type_object.tp_dictoffset",
    "heap_type_object.size", "heap_type_object.ht_cached_keys",
    "tuple_object.size", "tuple_object.ob_item", "tuple_object.ob_size",
    "list_object.size", "list_object.ob_item", "list_object.ob_size",
    "set_object.size", "set_object.used", "set_object.table", "set_object.mask",
    "dict_object.size", "dict_object.ma_keys", "dict_object.ma_values",
    "float_object.size", "float_object.ob_fval",
    "long_object.size", "long_object.lv_tag", "long_object.ob_digit",
    "bytes_object.size", "bytes_object.ob_size", "bytes_object.ob_sval",
    "unicode_object.size", "unicode_object.state", "unicode_object.length",
    "unicode_object.asciiobject_size", "unicode_object.compactunicodeobject_size",
    "gc.size", "gc.collecting", "gc.frame", "gc.generation_stats_size", "gc.generation_stats",
    "gen_object.size", "gen_object.gi_name", "gen_object.gi_iframe", "gen_object.gi_frame_state",
    "llist_node.next", "llist_node.prev",
    "debugger_support.eval_breaker", "debugger_support.remote_debugger_support",
    "debugger_support.remote_debugging_enabled", "debugger_support.debugger_pending_call",
    "debugger_support.debugger_script_path", "debugger_support.debugger_script_path_size",
};

struct TableLayout {
    int minor;
    std::span<const std::string_view> fields;
    std::size_t struct_size;  // sizeof(_Py_DebugOffsets) compiled against that version's headers
};

constexpr std::size_t table_size(std::size_t nfields) { return kFirstFieldAt + 8 * nfields; }
static_assert(table_size(std::size(kFields3_13)) == 584, "3.13 _Py_DebugOffsets is 584 bytes");
static_assert(table_size(std::size(kFields3_14)) == 760, "3.14 _Py_DebugOffsets is 760 bytes");
static_assert(table_size(std::size(kFields3_15)) == 888, "3.15 _Py_DebugOffsets is 888 bytes");

constexpr TableLayout kTables[] = {
    {13, kFields3_13, table_size(std::size(kFields3_13))},
    {14, kFields3_14, table_size(std::size(kFields3_14))},
    {15, kFields3_15, table_size(std::size(kFields3_15))},
};

// Which PythonLayout member each debug-offsets field fills.
struct Mapping {
    std::string_view field;
    uint64_t PythonLayout::*member;
};

constexpr Mapping kMappings[] = {
    {"runtime_state.interpreters_head", &PythonLayout::runtime_interpreters_head},
    {"interpreter_state.id", &PythonLayout::interp_id},
    {"interpreter_state.next", &PythonLayout::interp_next},
    {"interpreter_state.threads_head", &PythonLayout::interp_threads_head},
    {"thread_state.next", &PythonLayout::tstate_next},
    {"thread_state.interp", &PythonLayout::tstate_interp},
    {"thread_state.current_frame", &PythonLayout::tstate_current_frame},
    {"thread_state.thread_id", &PythonLayout::tstate_thread_id},
    {"thread_state.native_thread_id", &PythonLayout::tstate_native_thread_id},
    {"interpreter_frame.size", &PythonLayout::frame_size},
    {"interpreter_frame.previous", &PythonLayout::frame_previous},
    {"interpreter_frame.executable", &PythonLayout::frame_code},
    {"interpreter_frame.instr_ptr", &PythonLayout::frame_instr},
    {"interpreter_frame.localsplus", &PythonLayout::frame_localsplus},
    {"interpreter_frame.owner", &PythonLayout::frame_owner},
    {"interpreter_frame.stackpointer", &PythonLayout::frame_stackpointer},
    {"code_object.filename", &PythonLayout::code_filename},
    {"code_object.name", &PythonLayout::code_name},
    {"code_object.qualname", &PythonLayout::code_qualname},
    {"code_object.linetable", &PythonLayout::code_linetable},
    {"code_object.firstlineno", &PythonLayout::code_firstlineno},
    {"code_object.argcount", &PythonLayout::code_argcount},
    {"code_object.co_code_adaptive", &PythonLayout::code_code_adaptive},
    {"code_object.co_code_adaptive", &PythonLayout::code_size_no_bytecode},
    {"pyobject.ob_type", &PythonLayout::object_type},
    {"type_object.tp_name", &PythonLayout::type_name},
    {"bytes_object.ob_size", &PythonLayout::bytes_ob_size},
    {"bytes_object.ob_sval", &PythonLayout::bytes_ob_sval},
    {"unicode_object.state", &PythonLayout::unicode_state},
    {"unicode_object.length", &PythonLayout::unicode_length},
    {"unicode_object.asciiobject_size", &PythonLayout::ascii_object_size},
    {"unicode_object.compactunicodeobject_size", &PythonLayout::compact_unicode_object_size},
    {"gen_object.gi_name", &PythonLayout::gen_name},
    {"gen_object.gi_iframe", &PythonLayout::gen_iframe},
    {"gen_object.gi_frame_state", &PythonLayout::gen_frame_state},
};

uint64_t load_u64(std::span<const std::byte> bytes, std::size_t at) {
    uint64_t v;
    std::memcpy(&v, bytes.data() + at, sizeof v);  // the target is x86-64, as we are
    return v;
}

bool has_cookie(std::span<const std::byte> bytes) {
    return bytes.size() >= sizeof kCookie && std::memcmp(bytes.data(), kCookie, sizeof kCookie) == 0;
}

std::string version_text(uint64_t hex) { return loopspy::PythonVersion{static_cast<std::uint32_t>(hex)}.text(); }

const TableLayout* table_for(int minor) {
    for (const TableLayout& t : kTables) {
        if (t.minor == minor) return &t;
    }
    return nullptr;
}

}  // namespace

std::size_t debug_offsets_read_size() {
    std::size_t n = 0;
    for (const TableLayout& t : kTables) n = std::max(n, t.struct_size);
    return n;
}

uint64_t debug_offsets_version_at(std::span<const std::byte> bytes) {
    if (!has_cookie(bytes) || bytes.size() < kVersionAt + 8) return 0;
    return load_u64(bytes, kVersionAt);
}

Result<DebugOffsetsInfo> parse_debug_offsets(std::span<const std::byte> bytes, PythonLayout& out) {
    if (bytes.size() < kFirstFieldAt) {
        return make_error(ErrorKind::BadInput, "_PyRuntime debug offsets: only " +
                                                   std::to_string(bytes.size()) + " bytes");
    }
    if (!has_cookie(bytes)) {
        return make_error(ErrorKind::BadInput, "_PyRuntime does not start with the debug-offsets cookie");
    }
    const uint64_t version = load_u64(bytes, kVersionAt);
    const uint64_t major = (version >> 24) & 0xff;
    const int minor = static_cast<int>((version >> 16) & 0xff);
    if (major != 3 || minor < 13) {
        return make_error(ErrorKind::UnsupportedPython,
                          "debug offsets of Python " + version_text(version) + ": need 3.13 or newer");
    }
    const TableLayout* table = table_for(minor);
    if (table == nullptr) {
        return make_error(ErrorKind::UnsupportedPython,
                          "Python " + version_text(version) + " is newer than this loopspy supports");
    }
    if (bytes.size() < table->struct_size) {
        return make_error(ErrorKind::BadInput, "debug offsets of Python " + version_text(version) + ": got " +
                                                   std::to_string(bytes.size()) + " bytes, need " +
                                                   std::to_string(table->struct_size));
    }
    if (static_cast<int>(out.minor) != minor) {
        return make_error(ErrorKind::Internal, "layout for 3." + std::to_string(out.minor) +
                                                   " given to parse debug offsets of Python " +
                                                   version_text(version));
    }
    const uint64_t free_threaded = load_u64(bytes, kFreeThreadedAt);
    if (free_threaded > 1) {
        return make_error(ErrorKind::BadInput, "debug offsets: free_threaded flag is " +
                                                   std::to_string(free_threaded));
    }

    // Validate everything first so that `out` is untouched on error.
    PythonLayout updated = out;
    for (const Mapping& m : kMappings) {
        const auto it = std::find(table->fields.begin(), table->fields.end(), m.field);
        if (it == table->fields.end()) continue;  // this version does not carry it
        const std::size_t at = kFirstFieldAt + 8 * static_cast<std::size_t>(it - table->fields.begin());
        const uint64_t value = load_u64(bytes, at);
        if (value >= kMaxOffset) {
            return make_error(ErrorKind::BadInput, "debug offsets of Python " + version_text(version) + ": " +
                                                       std::string(m.field) + " = " + std::to_string(value) +
                                                       " is not a plausible offset");
        }
        updated.*m.member = value;
    }
    out = updated;
    return DebugOffsetsInfo{version, free_threaded != 0};
}

}  // namespace loopspy
