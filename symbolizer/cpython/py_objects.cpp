#include "symbolizer/cpython/py_objects.hpp"

#include <array>

#include "symbolizer/cpython/object_layout.hpp"

namespace loopspy {

using namespace objects;

namespace {
constexpr std::uint64_t kMaxEntries = 1 << 16;
}  // namespace

std::optional<std::string> PyObjectReader::str(std::uint64_t addr) const {
    if (types_.of_object(RemoteAddr{addr}) != "str") return std::nullopt;
    std::vector<std::byte> bytes = m_.read_prefix(RemoteAddr{addr}, 512);
    auto s = decode_pystring(bytes, unicode_, 200);
    if (!s) return std::nullopt;
    return *s;
}

std::optional<PyObjectReader::Keys> PyObjectReader::read_keys(std::uint64_t keys, std::uint64_t max_entries) const {
    std::array<std::byte, 48> head{};
    if (!m_.read(RemoteAddr{keys}, head)) return std::nullopt;
    Keys k;
    if (o_.keys_header == DictKeysHeader::SizeField) {
        // dk_size index slots of 1, 2, 4 or 8 bytes (by how large dk_size is), then the entries.
        const auto size = load_at<std::uint64_t>(head, kKeysSize).value_or(0);
        k.count = load_at<std::uint64_t>(head, kKeysSizedNentries).value_or(0);
        if (size == 0 || size > (1ull << 32) || (size & (size - 1)) != 0 || k.count > max_entries) return std::nullopt;
        const std::uint64_t slot = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4;
        k.entries = keys + kKeysSizedIndices + size * slot;
        k.entry_size = 24;
        k.key_at = 8;
        return k;
    }
    const auto log2_index = load_at<std::uint8_t>(head, kKeysLog2IndexBytes).value_or(0);
    const auto kind = load_at<std::uint8_t>(head, kKeysKind).value_or(0);
    k.count = load_at<std::uint64_t>(head, kKeysNentries).value_or(0);
    if (log2_index > 40 || k.count > max_entries) return std::nullopt;
    k.entries = keys + kKeysIndices + (1ull << log2_index);
    k.entry_size = kind == kKindGeneral ? 24 : 16;  // unicode keys: (key, value), no hash
    k.key_at = kind == kKindGeneral ? 8 : 0;
    return k;
}

/// (key, value) pairs of a dict's entries with str keys (combined or split table).
std::vector<std::pair<std::uint64_t, std::uint64_t>> PyObjectReader::dict_items(std::uint64_t dict) const {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    auto keys = m_.read_u64(RemoteAddr{dict + kDictKeys});
    auto values = m_.read_u64(RemoteAddr{dict + kDictValues});
    if (!keys || !values || !*keys) return out;
    auto k = read_keys(*keys, kMaxEntries);
    if (!k) return out;
    const std::uint64_t n = k->count, entry = k->entry_size, key_at = k->key_at;
    std::vector<std::byte> entries(n * entry);
    if (!m_.read(RemoteAddr{k->entries}, entries)) return out;
    std::vector<std::uint64_t> split_values;
    if (*values) {
        split_values.resize(n);
        const std::uint64_t first = o_.dict_values_header;
        if (!m_.read(RemoteAddr{*values + first}, std::as_writable_bytes(std::span(split_values)))) return out;
    }
    for (std::uint64_t i = 0; i < n; ++i) {
        std::uint64_t k = load_at<std::uint64_t>(entries, i * entry + key_at).value_or(0);
        std::uint64_t v = *values ? split_values[i] : load_at<std::uint64_t>(entries, i * entry + key_at + 8).value_or(0);
        if (k && v) out.emplace_back(k, v);
    }
    return out;
}

std::optional<std::uint64_t> PyObjectReader::dict_get(std::uint64_t dict, std::string_view key) const {
    for (const auto& [k, v] : dict_items(dict)) {
        if (auto s = str(k); s && *s == key) return v;
    }
    return std::nullopt;
}

/// An attribute kept in the instance dict of an object of a Python class.
std::optional<std::uint64_t> PyObjectReader::attribute(std::uint64_t obj, std::string_view name) const {
    RemoteAddr type = types_.type_of(RemoteAddr{obj});
    if (!type.value) return std::nullopt;
    if (o_.managed_dict == ManagedDict::DictOffset) {
        auto offset = m_.read_value<std::int64_t>(RemoteAddr{type.value + kTypeDictoffset});
        if (!offset || *offset <= 0 || *offset > 4096) return std::nullopt;
        auto dict = m_.read_u64(RemoteAddr{obj + static_cast<std::uint64_t>(*offset)});
        if (!dict || !*dict || types_.of_object(RemoteAddr{*dict}) != "dict") return std::nullopt;
        return dict_get(*dict, name);
    }
    auto flags = m_.read_u64(RemoteAddr{type.value + kTypeFlags});
    if (!flags || !(*flags & kTpManagedDict)) return std::nullopt;
    std::uint64_t values = 0, dict = 0;
    if (o_.managed_dict == ManagedDict::PointersBefore) {
        dict = m_.read_u64(RemoteAddr{obj - 24}).value_or(0);
        values = m_.read_u64(RemoteAddr{obj - 32}).value_or(0);
    } else if (o_.managed_dict == ManagedDict::TaggedValues) {
        std::uint64_t dv = m_.read_u64(RemoteAddr{obj - 24}).value_or(0);
        if (dv & 1) values = dv + 1;  // a tagged pointer one byte before the values
        else dict = dv;
    } else {
        dict = m_.read_u64(RemoteAddr{obj - 24}).value_or(0);
        if (!dict && (*flags & kTpInlineValues)) {
            auto basic = m_.read_u64(RemoteAddr{type.value + kTypeBasicsize});
            std::array<std::byte, 4> head{};
            if (basic && m_.read(RemoteAddr{obj + *basic}, head) && std::to_integer<int>(head[3]) != 0) {
                values = obj + *basic + 8;  // PyDictValues: capacity, size, embedded, valid, then the values
            }
        }
    }
    if (dict) return dict_get(dict, name);
    if (!values) return std::nullopt;
    // Shared keys: the attribute's index in the class's cached keys is its slot in `values`.
    auto keys = m_.read_u64(RemoteAddr{type.value + o_.ht_cached_keys});
    if (!keys || !*keys) return std::nullopt;
    auto shared = read_keys(*keys, 1024);
    if (!shared) return std::nullopt;
    const std::uint64_t n = shared->count;
    std::vector<std::byte> entries(n * shared->entry_size);
    if (!m_.read(RemoteAddr{shared->entries}, entries)) return std::nullopt;
    for (std::uint64_t i = 0; i < n; ++i) {
        auto k = load_at<std::uint64_t>(entries, i * shared->entry_size + shared->key_at).value_or(0);
        if (auto s = str(k); s && *s == name) {
            auto v = m_.read_u64(RemoteAddr{values + 8 * i});
            if (v && *v) return *v;
            return std::nullopt;
        }
    }
    return std::nullopt;
}

// A deleted slot's dummy object fails the later checks.

std::optional<std::uint64_t> PyObjectReader::module_globals(std::string_view name) const {
    if (!o_.interp_modules) return std::nullopt;  // a version whose sys.modules offset is not known
    std::uint64_t interp = m_.read_u64(RemoteAddr{interp_.runtime.value + interp_.layout.runtime_interpreters_head}).value_or(0);
    if (!interp) return std::nullopt;
    auto modules = m_.read_u64(RemoteAddr{interp + o_.interp_modules});
    if (!modules || types_.of_object(RemoteAddr{*modules}) != "dict") return std::nullopt;
    auto module = dict_get(*modules, name);
    if (!module || types_.of_object(RemoteAddr{*module}) != "module") return std::nullopt;
    auto globals = m_.read_u64(RemoteAddr{*module + kModuleDict});
    if (!globals || !*globals) return std::nullopt;
    return *globals;
}

std::optional<std::int64_t> PyObjectReader::small_int(std::uint64_t addr) const {
    if (types_.of_object(RemoteAddr{addr}) != "int") return std::nullopt;
    auto head = m_.read_u64(RemoteAddr{addr + kLongHeader});
    auto digits = m_.read_u64(RemoteAddr{addr + kLongDigits});
    if (!head || !digits) return std::nullopt;
    std::uint64_t ndigits = *head;
    bool negative = false;
    if (o_.long_header == LongHeader::Tagged) {
        negative = (*head & 3) == 2;
        ndigits = *head >> 3;
    } else if (static_cast<std::int64_t>(*head) < 0) {
        negative = true;
        ndigits = static_cast<std::uint64_t>(-static_cast<std::int64_t>(*head));
    }
    if (ndigits > 2) return std::nullopt;
    const std::int64_t v = ndigits == 0 ? 0
                           : static_cast<std::int64_t>((*digits & 0x3fffffff) |
                                                       (ndigits == 2 ? ((*digits >> 32) & 0x3fffffff) << 30 : 0));
    return negative ? -v : v;
}

std::optional<std::vector<std::uint64_t>> read_set_keys(const RemoteMemory& memory, RemoteAddr set,
                                                        std::uint64_t max_slots) {
    auto mask = memory.read_u64(RemoteAddr{set.value + objects::kSetMask});
    auto table = memory.read_u64(RemoteAddr{set.value + objects::kSetTable});
    // A set's mask is a table size less one, a power of two: anything else (UINT64_MAX, which
    // `mask + 1` would wrap to 0) is not a set read whole.
    if (!mask || !table || *mask >= max_slots || (*mask & (*mask + 1)) != 0) return std::nullopt;
    std::vector<std::uint64_t> slots((*mask + 1) * 2);  // setentry: key, hash
    // In pieces a remote read allows: 20,000 tasks make a table of 65,536 slots, 1 MiB.
    const std::size_t piece = RemoteMemory::kMaxRead / sizeof(std::uint64_t);
    for (std::size_t at = 0; at < slots.size(); at += piece) {
        const std::size_t n = std::min(piece, slots.size() - at);
        const RemoteAddr from{*table + at * sizeof(std::uint64_t)};
        if (!memory.read(from, std::as_writable_bytes(std::span(slots).subspan(at, n)))) return std::nullopt;
    }
    std::vector<std::uint64_t> out;
    for (std::uint64_t i = 0; i <= *mask; ++i) {
        if (slots[2 * i]) out.push_back(slots[2 * i]);
    }
    return out;
}

}  // namespace loopspy
