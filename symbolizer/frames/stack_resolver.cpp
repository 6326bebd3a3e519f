#include "symbolizer/frames/stack_resolver.hpp"

namespace loopspy {

bool StackResolver::resolve(std::span<const loopspy_frame> frames, std::vector<ResolvedFrame>& out) {
    out.clear();
    bool all_named = true;
    for (const loopspy_frame& f : frames) {
        std::uint32_t owner = f.owner & 0xff;
        if (owner == layout_.owner_cstack || owner == layout_.owner_interpreter) continue;
        const CodeInfo* info = symbolizer_.code(CodeAddr{f.code});
        // Before 3.11 the walk read the code object's first line: another first line here means
        // another code object. The cached one may be stale (a code object freed and its address
        // reused since): read it again, and if that is not the sample's either, leave it unnamed.
        auto other_code = [&f](const CodeInfo* i) {
            return (f.owner & LOOPSPY_FRAME_FIRSTLINE_SEEN) &&
                   loopspy_frame_firstline(f.owner) != (static_cast<std::uint32_t>(i->firstlineno) & LOOPSPY_FRAME_FIRSTLINE_MASK);
        };
        if (info && other_code(info)) {
            info = symbolizer_.recheck(CodeAddr{f.code});
            if (info && other_code(info)) info = nullptr;
        }
        // An instruction past the end of the code object's bytecode was not its: the code object
        // that ran was freed and another took its address before it was named (a module body run
        // once at start). Unnamed, not misnamed.
        if (info && f.offset >= 0 && info->lines.code_bytes() > 0 &&
            static_cast<std::uint32_t>(f.offset) > info->lines.code_bytes()) {
            info = nullptr;
        }
        if (!info) {
            all_named = false;
            out.push_back(ResolvedFrame{nullptr, 0});
            continue;
        }
        // A frame that has not reached its first traceable instruction is still being set up;
        // CPython leaves it out of tracebacks (generator frames are always complete).
        if (owner != layout_.owner_generator && f.offset >= -2 && f.offset < static_cast<std::int32_t>(info->first_traceable)) {
            continue;
        }
        out.push_back(ResolvedFrame{info, CodeSymbolizer::line_for(*info, f.offset)});
    }
    return all_named;
}

}  // namespace loopspy
