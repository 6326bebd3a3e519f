// ELF symbol lookup, on this very test binary and on the real interpreters we support.
#include <doctest/doctest.h>
#include <elf.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "symbolizer/process/elf_file.hpp"
#include "symbolizer/cpython/interpreter.hpp"
#include "symbolizer/process/proc_maps.hpp"

extern "C" {
// A symbol with a known address, to check that link-time -> run-time translation is right.
__attribute__((used, visibility("default"))) volatile int loopspy_elf_test_marker = 1234;
}

using namespace loopspy;

namespace {
std::string self_exe() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    REQUIRE(n > 0);
    return std::string(buf, static_cast<std::size_t>(n));
}
}  // namespace

TEST_CASE("a symbol of this binary is found and maps to its real address") {
    std::string exe = self_exe();
    auto elf = ElfFile::open(exe);
    REQUIRE(elf.ok());
    auto sym = elf->find_symbol("loopspy_elf_test_marker");
    REQUIRE(sym.has_value());
    CHECK(sym->size == sizeof(int));
    auto maps = read_proc_maps(Pid{static_cast<int>(::getpid())});
    REQUIRE(maps.ok());
    auto addr = runtime_address(*elf, *maps, exe, sym->value);
    REQUIRE(addr.has_value());
    CHECK(*addr == reinterpret_cast<std::uint64_t>(&loopspy_elf_test_marker));
    // The initial value is in the file, in the data segment.
    auto bytes = elf->bytes_at(sym->value, sizeof(int));
    REQUIRE(bytes.has_value());
    int v = 0;
    std::memcpy(&v, bytes->data(), sizeof(v));
    CHECK(v == 1234);
}

namespace {
/// A headers-only ELF with a text segment at file offset 0 and a data segment whose
/// vaddr - offset is 0x1000 more than the text's, as in libpython3.13.so.
std::vector<std::byte> two_segment_library() {
    std::vector<std::byte> out(0x3000);
    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_DYN;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_phoff = sizeof(Elf64_Ehdr);
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 2;
    Elf64_Phdr text{PT_LOAD, PF_R | PF_X, 0, 0, 0, 0x2000, 0x2000, 0x1000};
    Elf64_Phdr data{PT_LOAD, PF_R | PF_W, 0x2000, 0x3000, 0x3000, 0x800, 0x1000, 0x1000};
    std::memcpy(out.data(), &eh, sizeof(eh));
    std::memcpy(out.data() + eh.e_phoff, &text, sizeof(text));
    std::memcpy(out.data() + eh.e_phoff + sizeof(text), &data, sizeof(data));
    return out;
}
}  // namespace

TEST_CASE("an interpreter's data segment counts as in place only once the loader has mapped it") {
    // Between exec and the loader's mmap of the data segment, a library is one span mapped from
    // file offset 0, and the address of a data symbol shows other bytes of the file.
    auto elf = ElfFile::from_bytes(two_segment_library());
    REQUIRE(elf.ok());
    REQUIRE(elf->load_segments().size() == 2);
    const std::string path = "/usr/lib/libpython-test.so";
    const std::uint64_t runtime_vaddr = 0x3010;  // a data symbol, like _PyRuntime
    const std::uint64_t base = 0x7f0000000000;

    std::vector<Mapping> mid_load{{base, base + 0x4000, 0, "r--p", 1, path}};
    auto addr = runtime_address(*elf, mid_load, path, runtime_vaddr);
    REQUIRE(addr.has_value());
    CHECK(*addr == base + runtime_vaddr);
    CHECK_FALSE(segment_in_place(*elf, mid_load, path, runtime_vaddr, *addr));  // file offset 0x3010 there

    std::vector<Mapping> loaded{{base, base + 0x2000, 0, "r-xp", 1, path},
                                {base + 0x3000, base + 0x4000, 0x2000, "rw-p", 1, path}};
    CHECK(*runtime_address(*elf, loaded, path, runtime_vaddr) == *addr);
    CHECK(segment_in_place(*elf, loaded, path, runtime_vaddr, *addr));
    CHECK_FALSE(segment_in_place(*elf, loaded, "/other/file.so", runtime_vaddr, *addr));  // another file there
    CHECK_FALSE(segment_in_place(*elf, {}, path, runtime_vaddr, *addr));                 // nothing mapped there
    // .bss (past filesz): whatever is mapped at the address is the loader's final mapping.
    CHECK(segment_in_place(*elf, loaded, path, 0x3900, base + 0x3900));
}

TEST_CASE("a missing symbol is not found") {
    auto elf = ElfFile::open(self_exe());
    REQUIRE(elf.ok());
    CHECK_FALSE(elf->find_symbol("no_such_symbol_anywhere_xyz").has_value());
}

TEST_CASE("Debian's stripped static python3.11 exports _PyRuntime and Py_Version") {
    const char* path = "/usr/bin/python3.11";
    REQUIRE_MESSAGE(::access(path, R_OK) == 0, "/usr/bin/python3.11 is missing: run scripts/setup.sh --test");
    auto elf = ElfFile::open(path);
    REQUIRE(elf.ok());
    CHECK_FALSE(elf->find_section(".symtab").has_value());  // stripped: only .dynsym
    auto runtime = elf->find_symbol("_PyRuntime");
    REQUIRE(runtime.has_value());
    auto version = elf->find_symbol("Py_Version");
    REQUIRE(version.has_value());
    auto bytes = elf->bytes_at(version->value, 4);
    REQUIRE(bytes.has_value());
    std::uint32_t hex = 0;
    std::memcpy(&hex, bytes->data(), 4);
    CHECK((hex >> 16) == 0x030b);
}

TEST_CASE("garbage and truncated files are rejected, not crashed on") {
    std::vector<std::byte> junk(100, std::byte{0x41});
    CHECK_FALSE(ElfFile::from_bytes(junk).ok());
    CHECK_FALSE(ElfFile::from_bytes({}).ok());

    std::ifstream in(self_exe(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string all = ss.str();
    // Every prefix length class: header only, into the program headers, most of the file.
    // The section headers sit at the end of the file: every prefix loses them.
    for (std::size_t len : {std::size_t{64}, std::size_t{200}, std::size_t{4096}, all.size() / 2}) {
        auto prefix = std::as_bytes(std::span<const char>(all.data(), len));
        auto elf = ElfFile::from_bytes(prefix);
        CAPTURE(len);
        if (elf.ok()) {
            CHECK_FALSE(elf->find_symbol("main").has_value());
        } else {
            CHECK(elf.error().kind == ErrorKind::BadInput);
            CHECK_FALSE(elf.error().message.empty());
        }
    }
    // Section headers pointing far outside the file.
    std::string broken = all.substr(0, 4096);
    std::uint64_t far = ~0ull / 2;
    std::memcpy(broken.data() + 0x28, &far, sizeof(far));  // e_shoff
    auto elf = ElfFile::from_bytes(std::as_bytes(std::span<const char>(broken.data(), broken.size())));
    // Read from its program headers alone: no section, so no symbol, is found through them.
    REQUIRE(elf.ok());
    CHECK_FALSE(elf->find_section(".symtab").has_value());
    CHECK_FALSE(elf->find_section(".dynsym").has_value());
    CHECK_FALSE(elf->find_symbol("main").has_value());
}

TEST_CASE("/proc/PID/maps lines are parsed, paths with spaces kept") {
    auto maps = parse_proc_maps(
        "00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/python3.11\n"
        "7f1c0000-7f1c2000 rw-p 00012000 08:02 42 /tmp/my dir/lib x.so\n"
        "7ffd0000-7ffd1000 rw-p 00000000 00:00 0          [stack]\n"
        "garbage line\n");
    REQUIRE(maps.size() == 3);
    CHECK(maps[0].start == 0x400000);
    CHECK(maps[0].end == 0x452000);
    CHECK(maps[0].perms == "r-xp");
    CHECK(maps[0].path == "/usr/bin/python3.11");
    CHECK(maps[1].offset == 0x12000);
    CHECK(maps[1].path == "/tmp/my dir/lib x.so");
    CHECK(maps[2].inode == 0);
}
