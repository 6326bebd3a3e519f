// A frame read from the target's memory (a _PyInterpreterFrame, or before 3.11 a PyFrameObject),
// decoded the way the kernel side decodes the frames it walks (bpf/frame_walk.bpf.h): the code
// object with its tag bits cleared, the instruction's byte offset into the code, and the frame's
// owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "bpf/loopspy.h"
#include "symbolizer/cpython/layout.hpp"
#include "symbolizer/process/remote_memory.hpp"

namespace loopspy {

/// The frame whose first bytes are `bytes`; `owner` is the frame's owner as the caller knows it.
inline loopspy_frame decode_frame(std::span<const std::byte> bytes, const PythonLayout& l, std::uint8_t owner) {
    const std::uint64_t tag_mask = ~static_cast<std::uint64_t>(l.executable_tag_bits);
    const std::uint64_t code = load_at<std::uint64_t>(bytes, l.frame_code).value_or(0) & tag_mask;
    loopspy_frame f{};
    f.code = code;
    if (l.frame_lasti != kNone) {
        f.offset = load_at<std::int32_t>(bytes, l.frame_lasti).value_or(-1) * static_cast<std::int32_t>(l.lasti_unit);
    } else {
        const std::uint64_t instr = load_at<std::uint64_t>(bytes, l.frame_instr).value_or(0);
        f.offset = static_cast<std::int32_t>(instr - (code + l.code_code_adaptive));
    }
    f.owner = owner;
    return f;
}

/// The owner of the frame whose first bytes are `bytes`: its owner byte, or before 3.11 (no such
/// byte) owner_generator if the frame has a generator (f_gen), else owner_thread.
inline std::uint8_t frame_owner(std::span<const std::byte> bytes, const PythonLayout& l) {
    if (l.frame_lasti != kNone) {
        return load_at<std::uint64_t>(bytes, l.frame_gen).value_or(0) ? l.owner_generator : l.owner_thread;
    }
    return load_at<std::uint8_t>(bytes, l.frame_owner).value_or(0);
}

/// The coroutine (or generator) object of a generator-owned frame read at `frame`: the object the
/// frame is embedded in (3.11+), or the one its f_gen names.
inline std::uint64_t frame_coroutine(std::span<const std::byte> bytes, const PythonLayout& l, std::uint64_t frame) {
    if (l.frame_lasti != kNone) return load_at<std::uint64_t>(bytes, l.frame_gen).value_or(0);
    return frame - l.gen_iframe;
}

/// The innermost frame of the thread whose state is at `tstate`, 0 if none or unreadable.
inline std::uint64_t current_frame(const RemoteMemory& memory, const PythonLayout& l, RemoteAddr tstate) {
    if (l.tstate_frame != kNone) return memory.read_u64(RemoteAddr{tstate.value + l.tstate_frame}).value_or(0);
    if (l.tstate_current_frame != kNone) {
        return memory.read_u64(RemoteAddr{tstate.value + l.tstate_current_frame}).value_or(0);
    }
    const std::uint64_t cframe = memory.read_u64(RemoteAddr{tstate.value + l.tstate_cframe}).value_or(0);
    return cframe ? memory.read_u64(RemoteAddr{cframe + l.cframe_current_frame}).value_or(0) : 0;
}

}  // namespace loopspy
