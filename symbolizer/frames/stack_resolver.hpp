// From the kernel's raw frames (code object, instruction offset, owner) to named frames, applying
// CPython's own rules for which frames a traceback shows.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "bpf/loopspy.h"
#include "symbolizer/frames/code_symbolizer.hpp"

namespace loopspy {

struct ResolvedFrame {
    const CodeInfo* code = nullptr;  // null: the frame could not be named (<unknown>)
    int line = 0;
    bool coroutine() const {
        return code && (code->flags & (kCoCoroutine | kCoAsyncGenerator | kCoGenerator | kCoIterableCoroutine));
    }
};

class StackResolver {
public:
    StackResolver(CodeSymbolizer& symbolizer, const PythonLayout& layout) : symbolizer_(symbolizer), layout_(layout) {}

    /// Resolves frames given innermost first into `out` (innermost first). Frames CPython itself
    /// hides (entry shims, interpreter-owned frames, frames not yet started) are dropped.
    /// Returns false if any frame could not be named.
    bool resolve(std::span<const loopspy_frame> frames, std::vector<ResolvedFrame>& out);

private:
    CodeSymbolizer& symbolizer_;
    const PythonLayout& layout_;
};

}  // namespace loopspy
