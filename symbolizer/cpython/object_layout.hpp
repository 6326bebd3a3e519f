// The CPython objects loopspy reads besides frames and code (dicts, sets, ints, types, modules,
// the C asyncio Task), one table per version for the default x86-64 build, and the facts that
// are the same in every supported version. Every reader of those objects takes its offsets and
// its per-version choices from here; no reader branches on the minor version itself.
//
// Facts from each version's headers (Include/internal/pycore_dict.h, pycore_interp.h,
// cpython/object.h, cpython/longintrepr.h) and Modules/_asynciomodule.c's FutureObj/TaskObj,
// checked against live objects of pyenv 3.8.18, 3.9.18, 3.10.13, 3.11.7, 3.12.1, 3.13.0 and
// Debian's 3.11.2. (3.8-3.10 keep PyDictKeysObject and the Task in .c files: their offsets were
// read off live objects, a task's fields by finding its coroutine, name and waiter in it.)
#pragma once

#include <cstdint>

namespace loopspy {

/// Where asyncio's tasks are found.
enum class TaskSource : std::uint8_t {
    ModuleSets,    // the asyncio.tasks module's WeakSet of scheduled tasks (and set of eager ones)
    AsyncioDebug,  // the per-thread and per-interpreter task lists the .AsyncioDebug offsets name
};

/// How an instance of a Python class keeps its attributes (Py_TPFLAGS_MANAGED_DICT).
enum class ManagedDict : std::uint8_t {
    DictOffset,      // before 3.11: no managed dict; the instance dict pointer is tp_dictoffset in
    PointersBefore,  // 3.11: dict and values pointers at -24 and -32
    TaggedValues,    // 3.12: one word at -24, a dict or (tagged by bit 0) the values one byte on
    InlineValues,    // 3.13: the dict at -24, or inline values after tp_basicsize
};

/// How a PyLongObject says how many digits it has.
enum class LongHeader : std::uint8_t {
    SignedSize,  // 3.11: ob_size is the signed digit count
    Tagged,      // 3.12+: lv_tag = ndigits << 3 | sign (0 positive, 1 zero, 2 negative)
};

/// How a PyDictKeysObject says how large its index table is.
enum class DictKeysHeader : std::uint8_t {
    SizeField,       // before 3.11: dk_size (slots) at 8, dk_nentries at 32, dk_indices at 40; entries
                     // are always (hash, key, value)
    Log2IndexBytes,  // 3.11+: dk_log2_index_bytes, dk_kind (unicode keys drop the hash), dk_nentries
};

struct ObjectLayout {
    int minor;
    TaskSource tasks;
    LongHeader long_header;
    // The rest is read only with TaskSource::ModuleSets.
    ManagedDict managed_dict;
    std::uint64_t dict_values_header;  // bytes before a split dict's values (3.13: a 4-byte header, padded)
    const char* scheduled_tasks;       // the WeakSet's name in asyncio.tasks
    bool eager_tasks;                  // asyncio.tasks also has a set _eager_tasks
    std::uint64_t interp_modules;      // PyInterpreterState.modules (3.11) / imports.modules
    std::uint64_t ht_cached_keys;      // PyHeapTypeObject.ht_cached_keys
    std::uint64_t fut_state, task_fut_waiter, task_coro, task_name;  // FutureObj / TaskObj
    std::uint64_t function_closure;    // PyFunctionObject.func_closure
    DictKeysHeader keys_header;
};

/// The table of `minor`, or null for a version loopspy does not support.
const ObjectLayout* object_layout(int minor);

/// The same in every supported version.
namespace objects {
inline constexpr std::uint64_t kFutCallback0 = 24, kFutCallbacks = 40;    // FutureObj_HEAD
inline constexpr std::uint64_t kTypeBasicsize = 32, kTypeFlags = 168;    // PyTypeObject
inline constexpr std::uint64_t kTypeBase = 256;                          // PyTypeObject.tp_base
inline constexpr std::uint64_t kTypeDictoffset = 288;                    // PyTypeObject.tp_dictoffset
inline constexpr std::uint64_t kTpManagedDict = 1 << 4, kTpInlineValues = 1 << 2;
inline constexpr std::uint64_t kDictKeys = 32, kDictValues = 40;         // PyDictObject
inline constexpr std::uint64_t kKeysLog2Size = 8, kKeysLog2IndexBytes = 9, kKeysKind = 10, kKeysNentries = 24,
                               kKeysIndices = 32;                       // PyDictKeysObject, 3.11+
inline constexpr std::uint64_t kKeysSize = 8, kKeysSizedNentries = 32, kKeysSizedIndices = 40;  // before 3.11
inline constexpr std::uint8_t kKindGeneral = 0;
inline constexpr std::uint64_t kSetMask = 32, kSetTable = 40;            // PySetObject
inline constexpr std::uint64_t kModuleDict = 16;                         // PyModuleObject.md_dict
inline constexpr std::uint64_t kWeakrefObject = 16;                      // PyWeakReference.wr_object
inline constexpr std::uint64_t kCFunctionSelf = 24, kMethodSelf = 24;    // m_self, im_self
inline constexpr std::uint64_t kWakeupTask = 16;                         // TaskWakeupMethWrapper.ww_task (before 3.11)
inline constexpr std::uint64_t kCellRef = 16;                            // PyCellObject.ob_ref
inline constexpr std::uint64_t kVarSize = 16, kTupleItems = 24, kListItems = 24;
inline constexpr std::uint64_t kLongHeader = 16, kLongDigits = 24;       // ob_size / lv_tag, 30-bit digits
}  // namespace objects

}  // namespace loopspy
