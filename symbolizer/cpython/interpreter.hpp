// Finding the CPython interpreter inside a process: which mapped ELF carries _PyRuntime, where it
// is loaded, which version it is, and the struct layout to read it with.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/types.hpp"
#include "symbolizer/cpython/layout.hpp"
#include "symbolizer/process/proc_maps.hpp"
#include "symbolizer/process/remote_memory.hpp"

namespace loopspy {

inline constexpr int kOldestSupportedMinor = 8;
inline constexpr int kNewestSupportedMinor = 15;

struct Interpreter {
    std::string binary_path;  // the ELF that holds _PyRuntime, as /proc/PID/maps names it
    PythonVersion version;
    RemoteAddr runtime;       // &_PyRuntime in the target
    std::optional<RemoteAddr> code_type;  // &PyCode_Type, to validate code objects
    PythonLayout layout;   // offsets for this version (3.13+: from _Py_DebugOffsets)
    bool layout_from_debug_offsets = false;
    std::uint64_t image = 0;  // the program it was read from (ProcessStat::image), before the read
};

class ElfFile;

/// Where a link-time address `vaddr` of the ELF file `path` lies in a process with mappings `maps`.
std::optional<std::uint64_t> runtime_address(const ElfFile& elf, const std::vector<Mapping>& maps,
                                             const std::string& path, std::uint64_t vaddr);
/// True once the PT_LOAD segment holding link-time `vaddr` is mapped at `addr` from the right file
/// offset: while the loader is still placing a library's segments, it is not.
bool segment_in_place(const ElfFile& elf, const std::vector<Mapping>& maps, const std::string& path,
                      std::uint64_t vaddr, std::uint64_t addr);


/// Locates and identifies the interpreter of `pid`. Errors: NoSuchProcess, NotPython,
/// UnsupportedPython (naming the version found and the supported range), NoPrivilege.
Result<Interpreter> find_interpreter(Pid pid, const RemoteMemory& memory);

}  // namespace loopspy
