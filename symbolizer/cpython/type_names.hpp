// The type names of objects in another process (tp_name), read once per type object.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "core/types.hpp"
#include "symbolizer/cpython/layout.hpp"
#include "symbolizer/process/remote_memory.hpp"

namespace loopspy {

/// Type names of objects in the target, read once per type object.
class TypeNames {
public:
    TypeNames(const RemoteMemory& memory, const PythonLayout& layout) : memory_(memory), layout_(layout) {}
    /// tp_name of the type of the object at `object` ("" when unreadable).
    const std::string& of_object(RemoteAddr object);
    /// tp_name of the type object at `type`.
    const std::string& of_type(RemoteAddr type);
    /// The type object of the object at `object` (0 when unreadable).
    RemoteAddr type_of(RemoteAddr object) const;

private:
    const RemoteMemory& memory_;
    const PythonLayout& layout_;
    std::unordered_map<std::uint64_t, std::string> names_;
    std::string empty_;
};

}  // namespace loopspy
