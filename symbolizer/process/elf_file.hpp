// A small, bounds-checked reader for 64-bit little-endian ELF files: symbols, sections and
// segments, enough to find the interpreter's _PyRuntime and Py_Version. A malformed file yields
// errors or empty answers, never a read outside the mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace loopspy {

struct ElfSymbol {
    std::uint64_t value = 0;  // link-time virtual address
    std::uint64_t size = 0;
};

struct ElfSection {
    std::string name;
    std::uint64_t addr = 0;    // link-time virtual address (0 if not allocated)
    std::uint64_t offset = 0;  // file offset
    std::uint64_t size = 0;
    std::uint32_t type = 0;
    std::uint32_t link = 0;    // for a symbol table: index of its string table
};

struct ElfSegment {  // a PT_LOAD program header
    std::uint64_t vaddr = 0;
    std::uint64_t offset = 0;
    std::uint64_t filesz = 0;
    std::uint64_t memsz = 0;
};

class ElfFile {
public:
    /// Maps the file read-only. BadInput if it is not a 64-bit little-endian ELF file.
    static Result<ElfFile> open(const std::string& path);
    /// Parses an in-memory image (tests); the bytes are copied.
    static Result<ElfFile> from_bytes(std::span<const std::byte> bytes);

    std::optional<ElfSymbol> find_symbol(std::string_view name) const;
    std::optional<ElfSection> find_section(std::string_view name) const;
    const std::vector<ElfSegment>& load_segments() const { return segments_; }
    bool is_shared_object() const { return type_ == 3; }  // ET_DYN

    /// File offset of a link-time virtual address, if a PT_LOAD segment holds it in the file.
    std::optional<std::uint64_t> file_offset_of(std::uint64_t vaddr) const;
    /// The file bytes behind [vaddr, vaddr+size), if entirely present in the file.
    std::optional<std::span<const std::byte>> bytes_at(std::uint64_t vaddr, std::size_t size) const;
    /// The bytes of a section (empty for NOBITS or out-of-range sections).
    std::span<const std::byte> section_bytes(const ElfSection& s) const;

private:
    struct Image;
    explicit ElfFile(std::shared_ptr<const Image> image) : image_(std::move(image)) {}
    Result<void> parse();
    std::optional<ElfSymbol> find_in_table(const ElfSection& symtab, std::string_view name) const;
    std::span<const std::byte> bytes() const;

    std::shared_ptr<const Image> image_;
    std::uint16_t type_ = 0;
    std::vector<ElfSection> sections_;
    std::vector<ElfSegment> segments_;
};

}  // namespace loopspy
