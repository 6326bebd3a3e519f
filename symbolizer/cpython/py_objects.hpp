// Reading CPython containers from another process's memory, with the offsets of object_layout.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/types.hpp"
#include "symbolizer/cpython/interpreter.hpp"
#include "symbolizer/cpython/object_layout.hpp"
#include "symbolizer/cpython/pystring.hpp"
#include "symbolizer/cpython/type_names.hpp"
#include "symbolizer/process/remote_memory.hpp"

namespace loopspy {

/// The keys of a set object's hash table (empty slots left out; a deleted slot's dummy object
/// is a key too, for the caller to tell apart). Nothing if the table has more than `max_slots`
/// slots or cannot be read.
/// The keys of a set object (dummies of deleted slots included), or none when its table cannot be
/// read or has more than `max_slots` slots.
std::optional<std::vector<std::uint64_t>> read_set_keys(const RemoteMemory& memory, RemoteAddr set,
                                                        std::uint64_t max_slots);

/// Python objects of another process, read with a version's ObjectLayout: strings, dicts, an
/// instance's attributes (managed dicts and inline values), modules' globals, small ints.
/// Every read is bounded and fails as nullopt (or nothing), never by trusting a length.
class PyObjectReader {
public:
    PyObjectReader(const RemoteMemory& memory, const Interpreter& interp, const ObjectLayout& layout, TypeNames& types)
        : m_(memory), interp_(interp), o_(layout), types_(types), unicode_(unicode_layout_of(interp.layout)) {}

    /// A str object's text (up to 200 characters), or nullopt if `addr` is no str.
    std::optional<std::string> str(std::uint64_t addr) const;
    /// A dict's (key, value) pairs, combined or split (at most 65,536).
    std::vector<std::pair<std::uint64_t, std::uint64_t>> dict_items(std::uint64_t dict) const;
    /// The value of the str key `key` in a dict.
    std::optional<std::uint64_t> dict_get(std::uint64_t dict, std::string_view key) const;
    /// An attribute in an instance's own dict (or inline values) of a class with managed dicts.
    std::optional<std::uint64_t> attribute(std::uint64_t obj, std::string_view name) const;
    /// The globals dict of the imported module `name` (sys.modules[name].__dict__), if imported.
    std::optional<std::uint64_t> module_globals(std::string_view name) const;
    /// The value of an int object that fits in 60 bits.
    std::optional<std::int64_t> small_int(std::uint64_t addr) const;

private:
    /// Where a PyDictKeysObject's entries start, how many there are and how large each is.
    struct Keys {
        std::uint64_t entries = 0, count = 0, entry_size = 0, key_at = 0;
    };
    std::optional<Keys> read_keys(std::uint64_t keys, std::uint64_t max_entries) const;

    const RemoteMemory& m_;
    const Interpreter& interp_;
    const ObjectLayout& o_;
    TypeNames& types_;
    UnicodeLayout unicode_;
};

}  // namespace loopspy
