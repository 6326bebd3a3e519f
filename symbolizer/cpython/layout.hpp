// Memory layout of the CPython structures loopspy reads, per supported minor version.
//
// The numbers come from each version's own headers (tools/gen_layouts.py writes
// layouts_generated.inc). From 3.13 on the interpreter also describes many of them at run time
// in _Py_DebugOffsets; see debug_offsets.hpp, which overrides the generated values with those.
#pragma once

#include <cstdint>

namespace loopspy {

// Marks an offset that does not exist in a given version.
inline constexpr uint64_t kNone = UINT64_MAX;

struct PythonLayout {
  uint32_t minor;                       // 8..15
  // _PyRuntimeState
  uint64_t runtime_interpreters_head;   // offsetof(_PyRuntimeState, interpreters.head)
  // PyInterpreterState
  uint64_t interp_next, interp_threads_head, interp_id;
  // PyThreadState
  uint64_t tstate_next, tstate_interp, tstate_thread_id, tstate_native_thread_id;
  uint64_t tstate_cframe;               // 3.11/3.12: offsetof(PyThreadState, cframe); else kNone
  uint64_t cframe_current_frame;        // 3.11/3.12: offsetof(_PyCFrame, current_frame); else kNone
  uint64_t tstate_current_frame;        // 3.13+: offsetof(PyThreadState, current_frame); else kNone
  // _PyInterpreterFrame
  uint64_t frame_code;                  // f_code (3.11/3.12) or f_executable (3.13+)
  uint64_t frame_previous;
  uint64_t frame_instr;                 // prev_instr (3.11/3.12) or instr_ptr (3.13+)
  uint64_t frame_owner;
  uint64_t frame_localsplus;
  uint64_t frame_size;                  // sizeof(_PyInterpreterFrame)
  uint64_t frame_stacktop;              // 3.11-3.13: offsetof int stacktop (top of stack = localsplus[stacktop-1]); else kNone
  uint64_t frame_stackpointer;          // 3.14+: offsetof _PyStackRef *stackpointer (top of stack = stackpointer[-1]); else kNone
  uint8_t owner_thread, owner_generator, owner_frame_object, owner_cstack, owner_interpreter; // enum values; 0xff when absent
  uint8_t executable_tag_bits;          // 3.14+: low bits of _PyStackRef that are tags (mask them off), else 0
  // PyCodeObject
  uint64_t code_flags, code_argcount, code_firstlineno, code_filename, code_name, code_qualname,
           code_linetable, code_firsttraceable, code_code_adaptive, code_size_no_bytecode; // last = offsetof co_code_adaptive
  // PyUnicode (non-free-threaded build)
  uint64_t unicode_length, unicode_state, ascii_object_size, compact_unicode_object_size;
  uint8_t unicode_kind_shift, unicode_compact_bit, unicode_ascii_bit; // bit positions inside `state`
  // PyBytesObject
  uint64_t bytes_ob_size, bytes_ob_sval;
  // PyGenObject / PyCoroObject (frame embedded in the generator object in 3.11+)
  uint64_t gen_iframe;                  // offsetof(PyGenObject, gi_iframe) (3.11-3.13 name; find the 3.14/3.15 equivalent)
  uint64_t gen_frame_state;             // offsetof(PyGenObject, gi_frame_state)
  uint64_t gen_name, gen_qualname;
  int8_t gen_state_suspended;           // FRAME_SUSPENDED
  int8_t gen_state_yield_from;          // FRAME_SUSPENDED_YIELD_FROM (3.11 lacks it: FRAME_SUSPENDED)
  int8_t gen_state_executing;           // FRAME_EXECUTING
  // PyObject
  uint64_t object_type;                 // offsetof(PyObject, ob_type)
  uint64_t type_name;                   // offsetof(PyTypeObject, tp_name)
  // struct _gil_runtime_state: a thread waiting for the GIL sleeps on a futex inside it
  uint64_t runtime_gil;                 // 3.11: offsetof(_PyRuntimeState, ceval.gil) (the GIL itself); else kNone
  uint64_t interp_gil;                  // 3.12+: offsetof(PyInterpreterState, ceval.gil) (a pointer to it); else kNone
  uint64_t gil_size;                    // sizeof(struct _gil_runtime_state)
  uint64_t gil_last_holder;             // offsetof(struct _gil_runtime_state, last_holder)
  // PyDictObject / PyDictKeysObject (a dict of general keys, such as asyncio's current tasks)
  uint64_t dict_keys;                   // offsetof(PyDictObject, ma_keys)
  uint64_t dictkeys_log2_index_bytes, dictkeys_nentries, dictkeys_indices; // PyDictKeysObject
  uint64_t dictentry_size, dictentry_value; // sizeof(PyDictKeyEntry), offsetof(PyDictKeyEntry, me_value)
  // Before 3.11 a frame is a heap PyFrameObject (the _PyInterpreterFrame fields above then name
  // its f_code, f_back and f_localsplus, frame_size its fixed part); all kNone from 3.11 on
  uint64_t tstate_frame;                // offsetof(PyThreadState, frame): the innermost frame
  uint64_t frame_lasti;                 // offsetof(PyFrameObject, f_lasti) (int, -1 before the first)
  uint64_t frame_gen;                   // offsetof(PyFrameObject, f_gen): its generator or coroutine, or NULL
  uint64_t frame_state;                 // 3.10: offsetof(PyFrameObject, f_state) (signed char); else kNone
  uint64_t frame_executing;             // 3.8/3.9: offsetof(PyFrameObject, f_executing) (char); else kNone
  uint64_t frame_valuestack;            // offsetof(PyFrameObject, f_valuestack) (PyObject **)
  uint64_t frame_stackdepth;            // 3.10: offsetof(PyFrameObject, f_stackdepth) (int); else kNone
  uint64_t frame_stacktop_ptr;          // 3.8/3.9: offsetof(PyFrameObject, f_stacktop) (PyObject **); else kNone
  uint64_t gen_frame;                   // offsetof(PyGenObject, gi_frame) (NULL once finished)
  uint64_t code_code;                   // offsetof(PyCodeObject, co_code) (a bytes object)
  uint64_t dictkeys_size;               // offsetof(PyDictKeysObject, dk_size) (Py_ssize_t)
  uint8_t lasti_unit;                   // bytes of bytecode per f_lasti step: 1 (3.8/3.9), 2 (3.10); 0 from 3.11
  uint8_t linetable_format;             // 0: 3.11+ location table; 1: co_lnotab (3.8/3.9); 2: 3.10 co_linetable
};

#include "symbolizer/cpython/layouts_generated.inc"

// The generated layout of CPython 3.<minor>, or nullptr when that version is not supported.
inline const PythonLayout* python_layout(int minor) {
    for (const PythonLayout* l : kPythonLayouts) {
        if (static_cast<int>(l->minor) == minor) return l;
    }
    return nullptr;
}

}  // namespace loopspy
