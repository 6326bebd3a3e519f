#include "symbolizer/process/elf_file.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "core/unique_fd.hpp"

namespace loopspy {

struct ElfFile::Image {
    const std::byte* data = nullptr;
    std::size_t size = 0;
    void* mapped = nullptr;            // when memory-mapped
    std::vector<std::byte> owned;      // when copied from memory

    ~Image() {
        if (mapped) ::munmap(mapped, size);
    }
};

namespace {

template <typename T>
std::optional<T> load(std::span<const std::byte> b, std::uint64_t off) {
    if (off > b.size() || b.size() - off < sizeof(T)) return std::nullopt;
    T v;
    std::memcpy(&v, b.data() + off, sizeof(T));
    return v;
}

std::string_view cstring_at(std::span<const std::byte> b, std::uint64_t off) {
    if (off >= b.size()) return {};
    const char* s = reinterpret_cast<const char*>(b.data() + off);
    std::size_t max = b.size() - off;
    std::size_t n = ::strnlen(s, max);
    if (n == max) return {};  // not terminated inside the file
    return std::string_view(s, n);
}

}  // namespace

std::span<const std::byte> ElfFile::bytes() const { return {image_->data, image_->size}; }

Result<ElfFile> ElfFile::open(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return make_error(ErrorKind::Io, "cannot open " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || st.st_size <= 0) {
        return make_error(ErrorKind::BadInput, path + " is empty or unreadable");
    }
    auto image = std::make_shared<Image>();
    image->size = static_cast<std::size_t>(st.st_size);
    image->mapped = ::mmap(nullptr, image->size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (image->mapped == MAP_FAILED) {
        image->mapped = nullptr;
        return make_error(ErrorKind::Io, "cannot map " + path + ": " + std::strerror(errno));
    }
    image->data = static_cast<const std::byte*>(image->mapped);
    ElfFile elf(std::move(image));
    if (auto r = elf.parse(); !r) return make_error(r.error().kind, path + ": " + r.error().message);
    return elf;
}

Result<ElfFile> ElfFile::from_bytes(std::span<const std::byte> bytes) {
    auto image = std::make_shared<Image>();
    image->owned.assign(bytes.begin(), bytes.end());
    image->data = image->owned.data();
    image->size = image->owned.size();
    ElfFile elf(std::move(image));
    LOOPSPY_CHECK(elf.parse());
    return elf;
}

Result<void> ElfFile::parse() {
    auto b = bytes();
    auto ehdr = load<Elf64_Ehdr>(b, 0);
    if (!ehdr || std::memcmp(ehdr->e_ident, ELFMAG, SELFMAG) != 0) {
        return make_error(ErrorKind::BadInput, "not an ELF file");
    }
    if (ehdr->e_ident[EI_CLASS] != ELFCLASS64 || ehdr->e_ident[EI_DATA] != ELFDATA2LSB) {
        return make_error(ErrorKind::BadInput, "not a 64-bit little-endian ELF file");
    }
    type_ = ehdr->e_type;

    if (ehdr->e_phentsize == sizeof(Elf64_Phdr)) {
        for (std::uint64_t i = 0; i < ehdr->e_phnum; ++i) {
            auto ph = load<Elf64_Phdr>(b, ehdr->e_phoff + i * sizeof(Elf64_Phdr));
            if (!ph) break;
            if (ph->p_type == PT_LOAD) segments_.push_back({ph->p_vaddr, ph->p_offset, ph->p_filesz, ph->p_memsz});
        }
    }

    if (ehdr->e_shentsize == sizeof(Elf64_Shdr) && ehdr->e_shnum > 0) {
        std::vector<Elf64_Shdr> shdrs;
        for (std::uint64_t i = 0; i < ehdr->e_shnum; ++i) {
            auto sh = load<Elf64_Shdr>(b, ehdr->e_shoff + i * sizeof(Elf64_Shdr));
            if (!sh) break;
            shdrs.push_back(*sh);
        }
        const Elf64_Shdr* names = ehdr->e_shstrndx < shdrs.size() ? &shdrs[ehdr->e_shstrndx] : nullptr;
        for (const auto& sh : shdrs) {
            ElfSection s;
            if (names && sh.sh_name < names->sh_size) s.name = std::string(cstring_at(b, names->sh_offset + sh.sh_name));
            s.addr = sh.sh_addr;
            s.offset = sh.sh_offset;
            s.size = sh.sh_size;
            s.type = sh.sh_type;
            s.link = sh.sh_link;
            sections_.push_back(std::move(s));
        }
    }
    return {};
}

std::span<const std::byte> ElfFile::section_bytes(const ElfSection& s) const {
    auto b = bytes();
    if (s.type == SHT_NOBITS || s.offset > b.size() || b.size() - s.offset < s.size) return {};
    return b.subspan(s.offset, s.size);
}

std::optional<ElfSection> ElfFile::find_section(std::string_view name) const {
    for (const auto& s : sections_) {
        if (s.name == name) return s;
    }
    return std::nullopt;
}

std::optional<ElfSymbol> ElfFile::find_in_table(const ElfSection& symtab, std::string_view name) const {
    std::uint32_t link = symtab.link;
    if (link >= sections_.size()) return std::nullopt;
    auto strtab = section_bytes(sections_[link]);
    auto syms = section_bytes(symtab);
    for (std::size_t off = 0; off + sizeof(Elf64_Sym) <= syms.size(); off += sizeof(Elf64_Sym)) {
        auto sym = load<Elf64_Sym>(syms, off);
        if (!sym || sym->st_shndx == SHN_UNDEF || sym->st_name == 0) continue;
        if (cstring_at(strtab, sym->st_name) == name) return ElfSymbol{sym->st_value, sym->st_size};
    }
    return std::nullopt;
}

std::optional<ElfSymbol> ElfFile::find_symbol(std::string_view name) const {
    for (const char* table : {".dynsym", ".symtab"}) {
        for (const auto& s : sections_) {
            if (s.name == table) {
                if (auto sym = find_in_table(s, name)) return sym;
            }
        }
    }
    return std::nullopt;
}

std::optional<std::uint64_t> ElfFile::file_offset_of(std::uint64_t vaddr) const {
    for (const auto& seg : segments_) {
        if (vaddr >= seg.vaddr && vaddr - seg.vaddr < seg.filesz) return seg.offset + (vaddr - seg.vaddr);
    }
    return std::nullopt;
}

std::optional<std::span<const std::byte>> ElfFile::bytes_at(std::uint64_t vaddr, std::size_t size) const {
    for (const auto& seg : segments_) {
        if (vaddr >= seg.vaddr && vaddr - seg.vaddr < seg.filesz && seg.filesz - (vaddr - seg.vaddr) >= size) {
            std::uint64_t off = seg.offset + (vaddr - seg.vaddr);
            auto b = bytes();
            if (off > b.size() || b.size() - off < size) return std::nullopt;
            return b.subspan(off, size);
        }
    }
    return std::nullopt;
}

}  // namespace loopspy
