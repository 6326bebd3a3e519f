// Turns (code object address, instruction offset) into `qualname (file:line)`, reading the code
// object out of the target once and caching it. A cached entry is re-validated the first time it
// is used in each generation (the caller starts one every 100 ms), so a code object that was freed
// and whose address was reused is not misnamed for long.
//
// The drain lags the kernel by up to 150 ms, so the last samples of a target that ends are named
// after it has gone, or while it finalizes and frees its code objects. So a re-check that finds
// no code object where a cached one was does not always drop it. Memory that can no longer be
// read holds nothing a sample could have named since: the entry stands. Memory that holds no code
// object now: the entry stands if its code object was still there when its kYoungGenerations of
// re-checks ended, since a long-lived code object is freed at finalization or unload, and naming a
// sample wrongly would take a code object that lived and died at the same address within the
// drain's lag. Young code (a module body run once at import) is dropped: its address is often
// reused at once. A different code object at the address always replaces the entry.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/types.hpp"
#include "symbolizer/cpython/interpreter.hpp"
#include "symbolizer/frames/linetable.hpp"
#include "symbolizer/cpython/pystring.hpp"
#include "symbolizer/process/remote_memory.hpp"

namespace loopspy {

/// Code flags (CO_*) the reports care about.
inline constexpr std::uint32_t kCoGenerator = 0x20;
inline constexpr std::uint32_t kCoCoroutine = 0x80;
inline constexpr std::uint32_t kCoIterableCoroutine = 0x100;
inline constexpr std::uint32_t kCoAsyncGenerator = 0x200;

struct CodeInfo {
    std::string qualname;  // co_qualname, or co_name where that fails
    std::string filename;  // co_filename
    int firstlineno = 0;
    std::uint32_t flags = 0;
    std::uint32_t first_traceable = 0;  // byte offset of the first traceable instruction
    LineTable lines;
};

class CodeSymbolizer {
public:
    CodeSymbolizer(const RemoteMemory& memory, const Interpreter& interp);

    /// The code object at `code`, or nullptr when it cannot be read or is not a code object.
    const CodeInfo* code(CodeAddr code);
    /// The line for a frame whose current instruction is at `offset` bytes into the bytecode.
    static int line_for(const CodeInfo& info, std::int32_t offset);

    /// Starts a new validation generation: every cached entry is checked again on next use, and
    /// entries loaded in the last kYoungGenerations are checked now. Young entries are the ones
    /// likely to die (code run once at import, eval/exec), and a caller that caches whole stacks
    /// never asks again for a code object it already named: it watches invalidations() instead.
    void new_generation();
    static constexpr std::uint64_t kYoungGenerations = 10;

    /// The code object at `code`, its cached entry checked again now: for a caller that has
    /// reason to doubt it (before 3.11, a sample whose code object had another first line).
    const CodeInfo* recheck(CodeAddr code);

    /// Cached entries dropped so far (a caller that caches whole stacks watches this).
    std::uint64_t invalidations() const { return invalidations_; }

private:
    struct Entry {
        std::unique_ptr<CodeInfo> info;  // null: not a readable code object
        std::uint64_t fingerprint = 0;
        std::uint64_t generation = 0;         // last validated
        std::uint64_t loaded_generation = 0;
    };
    /// What a re-read of a code object's header found.
    struct Fingerprint {
        enum class Kind { Code, NotCode, Unreadable } kind;
        std::uint64_t value = 0;  // for Code: the type, names and first line, hashed
    };
    Fingerprint read_fingerprint(CodeAddr code, std::span<const std::byte>* header_out,
                                 std::vector<std::byte>& header);
    /// Whether `e` stands although a re-check found `kind` (not its code object) at its address.
    bool survives(const Entry& e, Fingerprint::Kind kind) const;
    std::unique_ptr<CodeInfo> load(CodeAddr code, std::span<const std::byte> header);
    std::optional<std::string> read_string(std::uint64_t addr);

    const RemoteMemory& memory_;
    const Interpreter& interp_;
    UnicodeLayout unicode_;
    std::unordered_map<std::uint64_t, Entry> cache_;
    std::uint64_t generation_ = 1;
    std::uint64_t invalidations_ = 0;
};

}  // namespace loopspy
