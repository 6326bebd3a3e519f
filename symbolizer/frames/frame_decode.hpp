// A _PyInterpreterFrame read from the target's memory, decoded the way the kernel side decodes
// the frames it walks (bpf/frame_walk.bpf.h): the code object with its tag bits cleared, the
// instruction's byte offset into the code, and the frame's owner.
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
    const std::uint64_t instr = load_at<std::uint64_t>(bytes, l.frame_instr).value_or(0);
    loopspy_frame f{};
    f.code = code;
    f.offset = static_cast<std::int32_t>(instr - (code + l.code_code_adaptive));
    f.owner = owner;
    return f;
}

/// The owner byte of the frame whose first bytes are `bytes`.
inline std::uint8_t frame_owner(std::span<const std::byte> bytes, const PythonLayout& l) {
    return load_at<std::uint8_t>(bytes, l.frame_owner).value_or(0);
}

}  // namespace loopspy
