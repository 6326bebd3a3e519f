#include "symbolizer/cpython/interpreter.hpp"

#include <algorithm>
#include <cstring>
#include <regex>
#include <set>

#include "symbolizer/cpython/debug_offsets.hpp"
#include "symbolizer/process/elf_file.hpp"

namespace loopspy {
namespace {

std::string supported_range() {
    return "3." + std::to_string(kOldestSupportedMinor) + " to 3." + std::to_string(kNewestSupportedMinor);
}

}  // namespace

std::optional<std::uint64_t> runtime_address(const ElfFile& elf, const std::vector<Mapping>& maps,
                                             const std::string& path, std::uint64_t vaddr) {
    for (const auto& m : maps) {
        if (m.path != path) continue;
        for (const auto& seg : elf.load_segments()) {
            std::uint64_t seg_file_start = seg.offset & ~0xfffull;
            if (m.offset >= seg_file_start && m.offset < seg.offset + std::max(seg.filesz, std::uint64_t{1})) {
                // vaddr - offset is page-aligned for a PT_LOAD segment, so this is the load bias.
                std::uint64_t bias = m.start - m.offset - (seg.vaddr - seg.offset);
                return vaddr + bias;
            }
        }
    }
    return std::nullopt;
}

bool segment_in_place(const ElfFile& elf, const std::vector<Mapping>& maps, const std::string& path,
                      std::uint64_t vaddr, std::uint64_t addr) {
    auto want_offset = elf.file_offset_of(vaddr);
    for (const auto& m : maps) {
        if (addr < m.start || addr >= m.end) continue;
        if (!want_offset) return true;  // .bss: any mapping at the address is the final one
        return m.path == path && m.offset + (addr - m.start) == *want_offset;
    }
    return false;
}

namespace {

/// The PY_VERSION string ("3.9.18") from .rodata, for interpreters older than Py_Version (3.11).
/// The linker may keep it only as the tail of a longer string that ends the same way (the build
/// directory's "…/Python-3.9.18"), so a string's tail counts, after a character that cannot be
/// part of a version.
std::optional<std::string> version_string_from_rodata(const ElfFile& elf) {
    auto rodata = elf.find_section(".rodata");
    if (!rodata) return std::nullopt;
    auto bytes = elf.section_bytes(*rodata);
    const char* p = reinterpret_cast<const char*>(bytes.data());
    static const std::regex kVersion(R"((?:^|[^0-9.])([23]\.\d{1,2}\.\d{1,2}(?:[abc]|rc)?\d*\+?)$)");
    std::size_t i = 0;
    while (i < bytes.size()) {
        std::size_t len = ::strnlen(p + i, bytes.size() - i);
        if (len >= 5 && len <= 4096) {
            // Only the last 16 characters can hold the version.
            const std::size_t tail = std::min<std::size_t>(len, 16);
            std::string s(p + i + len - tail, tail);
            std::smatch m;
            // (A version is at most 12 characters, so a match at the tail's start is a whole string.)
            if (std::regex_search(s, m, kVersion)) return m[1].str();
        }
        i += len + 1;
    }
    return std::nullopt;
}

/// PY_VERSION_HEX of a "3.9.18"-style string (a final release, as far as the layout goes).
std::optional<std::uint32_t> version_hex_of(const std::string& text) {
    static const std::regex kParts(R"(^(\d)\.(\d{1,2})\.(\d{1,2}))");
    std::smatch m;
    if (!std::regex_search(text, m, kParts)) return std::nullopt;
    return static_cast<std::uint32_t>(std::stoi(m[1].str()) << 24 | std::stoi(m[2].str()) << 16 |
                                      std::stoi(m[3].str()) << 8 | 0xf0);
}

/// Before 3.11 the version comes from a string, so it must be confirmed by what the layout it
/// selects reads: the first interpreter's first thread state points back at that interpreter.
/// An interpreter not initialised yet (a launch caught early) has nothing to contradict it.
std::optional<std::string> layout_contradiction(const RemoteMemory& memory, const Interpreter& interp) {
    const PythonLayout& l = interp.layout;
    auto head = memory.read_u64(RemoteAddr{interp.runtime.value + l.runtime_interpreters_head});
    if (!head || *head == 0) return std::nullopt;
    auto tstate = memory.read_u64(RemoteAddr{*head + l.interp_threads_head});
    if (!tstate || *tstate == 0) return std::nullopt;
    auto back = memory.read_u64(RemoteAddr{*tstate + l.tstate_interp});
    if (back && *back == *head) return std::nullopt;
    return "its thread state does not point back at its interpreter with " + interp.version.text() + "'s layout";
}

struct Candidate {
    std::string path;
    const Mapping* first = nullptr;
};

/// Mapped ELF files, most likely interpreter first: the executable, then names containing "python".
std::vector<Candidate> candidates(Pid pid, const std::vector<Mapping>& maps) {
    std::vector<Candidate> out;
    std::set<std::string> seen;
    for (const auto& m : maps) {
        if (m.path.empty() || m.path[0] != '/' || m.inode == 0) continue;
        if (!seen.insert(m.path).second) continue;
        out.push_back({m.path, &m});
    }
    char exe[4096];
    std::string link = "/proc/" + std::to_string(pid.value) + "/exe";
    ssize_t n = ::readlink(link.c_str(), exe, sizeof(exe) - 1);
    std::string exe_path = n > 0 ? std::string(exe, static_cast<std::size_t>(n)) : std::string();
    auto rank = [&](const Candidate& c) {
        if (c.path == exe_path) return 0;
        std::string base = c.path.substr(c.path.rfind('/') + 1);
        if (base.find("python") != std::string::npos) return 1;
        if (base.rfind("ld-linux", 0) == 0 || base.rfind("libc.so", 0) == 0 || base.rfind("libm.so", 0) == 0) return 3;
        return 2;
    };
    std::stable_sort(out.begin(), out.end(), [&](const Candidate& a, const Candidate& b) { return rank(a) < rank(b); });
    return out;
}

}  // namespace

Result<Interpreter> find_interpreter(Pid pid, const RemoteMemory& memory) {
    const auto stat = read_process_stat(pid);
    LOOPSPY_TRY(auto maps, read_proc_maps(pid));

    for (const auto& cand : candidates(pid, maps)) {
        auto elf = ElfFile::open(mapping_file_path(pid, *cand.first));
        if (!elf) continue;
        auto runtime_sym = elf->find_symbol("_PyRuntime");
        std::optional<std::uint64_t> runtime_vaddr;
        if (runtime_sym) runtime_vaddr = runtime_sym->value;
        else if (auto sec = elf->find_section(".PyRuntime")) runtime_vaddr = sec->addr;
        if (!runtime_vaddr) continue;

        Interpreter interp;
        interp.binary_path = cand.path;
        interp.image = stat ? stat->image : 0;
        auto runtime = runtime_address(*elf, maps, cand.path, *runtime_vaddr);
        if (!runtime) continue;
        // Between exec and the dynamic loader's mapping of the data segment, the address of
        // _PyRuntime holds other bytes of the file: not an interpreter to read yet.
        if (!segment_in_place(*elf, maps, cand.path, *runtime_vaddr, *runtime)) continue;
        interp.runtime = RemoteAddr{*runtime};

        auto version_sym = elf->find_symbol("Py_Version");
        std::optional<std::uint64_t> hex;
        if (version_sym) {
            if (auto bytes = elf->bytes_at(version_sym->value, 4)) {
                std::uint32_t v;
                std::memcpy(&v, bytes->data(), 4);
                hex = v;
            } else if (auto addr = runtime_address(*elf, maps, cand.path, version_sym->value)) {
                if (auto v = memory.read_value<std::uint32_t>(RemoteAddr{*addr})) hex = *v;
            }
        }
        bool from_string = false;
        if (!hex) {
            // Py_Version first appeared in 3.11; before, the version string Py_GetVersion
            // formats. Never the file name: a name says what was meant, not what runs.
            auto s = version_string_from_rodata(*elf);
            if (s) hex = version_hex_of(*s);
            if (!hex) {
                return make_error(ErrorKind::UnsupportedPython, "cannot tell which Python version " + cand.path +
                                                                    " is: it has no Py_Version and no version string");
            }
            from_string = true;
        }
        interp.version = PythonVersion{static_cast<std::uint32_t>(*hex)};
        int minor = interp.version.minor();
        if (interp.version.major() != 3 || minor < kOldestSupportedMinor || minor > kNewestSupportedMinor) {
            return make_error(ErrorKind::UnsupportedPython,
                              "unsupported Python version " + interp.version.text() + " in " + cand.path +
                                  " (supported: " + supported_range() + ")");
        }
        const PythonLayout* table = python_layout(minor);
        if (!table) {
            return make_error(ErrorKind::UnsupportedPython,
                              "no layout for Python " + interp.version.text());
        }
        interp.layout = *table;
        if (from_string) {
            if (auto contradiction = layout_contradiction(memory, interp)) {
                return make_error(ErrorKind::UnsupportedPython, "Python " + interp.version.text() + " in " + cand.path +
                                                                    " does not read as that version: " + *contradiction);
            }
        }

        if (minor >= 13) {
            std::vector<std::byte> head(debug_offsets_read_size());
            if (!memory.read(interp.runtime, head)) {
                if (!process_exists(pid)) {
                    return make_error(ErrorKind::NoSuchProcess, "process " + std::to_string(pid.value) + " exited");
                }
                return access_denied(pid, "the memory of process " + std::to_string(pid.value));
            }
            auto info = parse_debug_offsets(head, interp.layout);
            if (!info) {
                return make_error(ErrorKind::UnsupportedPython, "Python " + interp.version.text() + " in " +
                                                                    cand.path + ": " + info.error().message);
            }
            if (info->free_threaded) {
                return make_error(ErrorKind::UnsupportedPython,
                                  "free-threaded Python " + interp.version.text() + " is not supported yet");
            }
            if (((info->version_hex >> 16) & 0xffff) != (interp.version.hex >> 16)) {
                return make_error(ErrorKind::UnsupportedPython, "Py_Version and _Py_DebugOffsets disagree in " + cand.path);
            }
            interp.layout_from_debug_offsets = true;
        }
        if (auto code_type = elf->find_symbol("PyCode_Type")) {
            if (auto addr = runtime_address(*elf, maps, cand.path, code_type->value)) interp.code_type = RemoteAddr{*addr};
        }
        return interp;
    }
    if (!process_exists(pid)) return make_error(ErrorKind::NoSuchProcess, "process " + std::to_string(pid.value) + " exited");
    return make_error(ErrorKind::NotPython, "process " + std::to_string(pid.value) + " (" + process_cmdline(pid) +
                                                ") is not a Python process: no mapped ELF exports _PyRuntime");
}

}  // namespace loopspy
