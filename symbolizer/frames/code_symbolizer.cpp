#include "symbolizer/frames/code_symbolizer.hpp"

#include <algorithm>

namespace loopspy {
namespace {

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

constexpr std::size_t kMaxLineTable = 256 * 1024;

}  // namespace

CodeSymbolizer::CodeSymbolizer(const RemoteMemory& memory, const Interpreter& interp)
    : memory_(memory), interp_(interp) {
    unicode_ = unicode_layout_of(interp.layout);
}

std::optional<std::string> CodeSymbolizer::read_string(std::uint64_t addr) {
    if (addr == 0) return std::nullopt;
    // Most names fit the first read; a longer string gets one more, exactly sized, read.
    auto bytes = memory_.read_prefix(RemoteAddr{addr}, 256);
    auto s = decode_pystring(bytes, unicode_);
    if (s) return std::move(*s);
    auto need = pystring_read_size(bytes, unicode_);
    if (need && *need > bytes.size() && *need <= 64 * 1024) {
        bytes = memory_.read_prefix(RemoteAddr{addr}, *need);
        auto again = decode_pystring(bytes, unicode_);
        if (again) return std::move(*again);
    }
    return std::nullopt;
}

CodeSymbolizer::Fingerprint CodeSymbolizer::read_fingerprint(CodeAddr code, std::span<const std::byte>* header_out,
                                                             std::vector<std::byte>& header) {
    using Kind = Fingerprint::Kind;
    const PythonLayout& l = interp_.layout;
    header.resize(l.code_size_no_bytecode);
    if (!memory_.read(RemoteAddr{code.value}, header)) return {Kind::Unreadable};
    auto type = load_at<std::uint64_t>(header, l.object_type);
    if (!type) return {Kind::NotCode};
    if (interp_.code_type && *type != interp_.code_type->value) return {Kind::NotCode};
    std::uint64_t h = *type;
    for (std::uint64_t off : {l.code_filename, l.code_name, l.code_qualname, l.code_linetable}) {
        h = mix(h, load_at<std::uint64_t>(header, off).value_or(0));
    }
    h = mix(h, static_cast<std::uint64_t>(load_at<std::int32_t>(header, l.code_firstlineno).value_or(0)));
    if (header_out) *header_out = header;
    return {Kind::Code, h};
}

std::unique_ptr<CodeInfo> CodeSymbolizer::load(CodeAddr code, std::span<const std::byte> header) {
    (void)code;
    const PythonLayout& l = interp_.layout;
    auto info = std::make_unique<CodeInfo>();
    info->firstlineno = load_at<std::int32_t>(header, l.code_firstlineno).value_or(0);
    info->flags = static_cast<std::uint32_t>(load_at<std::int32_t>(header, l.code_flags).value_or(0));
    if (l.code_firsttraceable != kNone) {
        info->first_traceable =
            static_cast<std::uint32_t>(load_at<std::int32_t>(header, l.code_firsttraceable).value_or(0)) * 2;
    }
    auto qualname = read_string(load_at<std::uint64_t>(header, l.code_qualname).value_or(0));
    if (!qualname) qualname = read_string(load_at<std::uint64_t>(header, l.code_name).value_or(0));
    auto filename = read_string(load_at<std::uint64_t>(header, l.code_filename).value_or(0));
    if (!qualname || !filename) return nullptr;
    info->qualname = std::move(*qualname);
    info->filename = std::move(*filename);

    // Before 3.11 the bytecode is a bytes object of its own, and co_lnotab does not say where it ends.
    std::uint32_t code_bytes = 0;
    if (l.code_code != kNone) {
        const std::uint64_t co_code = load_at<std::uint64_t>(header, l.code_code).value_or(0);
        auto n = co_code ? memory_.read_value<std::int64_t>(RemoteAddr{co_code + l.bytes_ob_size}) : std::nullopt;
        if (!n || *n < 0 || *n > std::int64_t{1} << 30) return info;  // named, without lines
        code_bytes = static_cast<std::uint32_t>(*n);
    }
    std::uint64_t table = load_at<std::uint64_t>(header, l.code_linetable).value_or(0);
    if (table) {
        auto size = memory_.read_value<std::int64_t>(RemoteAddr{table + l.bytes_ob_size});
        // An empty co_lnotab is a code object all on its first line.
        if (size && *size >= 0 && static_cast<std::size_t>(*size) <= kMaxLineTable) {
            std::vector<std::byte> raw(static_cast<std::size_t>(*size));
            if (raw.empty() || memory_.read(RemoteAddr{table + l.bytes_ob_sval}, raw)) {
                auto u8 = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());
                info->lines = LineTable::decode(static_cast<LineTableFormat>(l.linetable_format), u8,
                                                info->firstlineno, code_bytes);
            }
        }
    }
    return info;
}

const CodeInfo* CodeSymbolizer::code(CodeAddr code) {
    using Kind = Fingerprint::Kind;
    auto it = cache_.find(code.value);
    if (it != cache_.end() && it->second.generation == generation_) return it->second.info.get();

    std::vector<std::byte> header;
    std::span<const std::byte> view;
    Fingerprint fingerprint = read_fingerprint(code, &view, header);
    if (it != cache_.end()) {
        Entry& e = it->second;
        if (fingerprint.kind == Kind::Code && fingerprint.value == e.fingerprint && e.info) {
            e.generation = generation_;
            return e.info.get();
        }
        // Not confirmed, so its generation stays.
        if (survives(e, fingerprint.kind)) return e.info.get();
        ++invalidations_;
    }
    Entry entry;
    entry.generation = generation_;
    entry.loaded_generation = generation_;
    if (fingerprint.kind == Kind::Code) {
        entry.fingerprint = fingerprint.value;
        entry.info = load(code, view);
    }
    auto& slot = cache_[code.value];
    slot = std::move(entry);
    return slot.info.get();
}

const CodeInfo* CodeSymbolizer::recheck(CodeAddr code) {
    auto it = cache_.find(code.value);
    if (it != cache_.end()) it->second.generation = 0;  // not validated in this generation
    return this->code(code);
}

bool CodeSymbolizer::survives(const Entry& e, Fingerprint::Kind kind) const {
    if (!e.info) return false;
    if (kind == Fingerprint::Kind::Unreadable) return true;
    return kind == Fingerprint::Kind::NotCode && e.generation - e.loaded_generation >= kYoungGenerations;
}

void CodeSymbolizer::new_generation() {
    using Kind = Fingerprint::Kind;
    ++generation_;
    std::vector<std::byte> header;
    for (auto it = cache_.begin(); it != cache_.end();) {
        Entry& e = it->second;
        if (generation_ - e.loaded_generation > kYoungGenerations) {
            ++it;
            continue;
        }
        Fingerprint fingerprint = read_fingerprint(CodeAddr{it->first}, nullptr, header);
        if (fingerprint.kind == Kind::Code && fingerprint.value == e.fingerprint) {
            e.generation = generation_;
            ++it;
        } else if (survives(e, fingerprint.kind)) {
            ++it;
        } else {
            ++invalidations_;
            it = cache_.erase(it);
        }
    }
}

int CodeSymbolizer::line_for(const CodeInfo& info, std::int32_t offset) {
    // Like PyCode_Addr2Line: an offset before the first instruction reports the def line.
    if (offset < 0) return info.firstlineno;
    int line = info.lines.line_for_offset(static_cast<std::uint32_t>(offset));
    return line;
}

}  // namespace loopspy
