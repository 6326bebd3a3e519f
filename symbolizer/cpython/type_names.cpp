#include "symbolizer/cpython/type_names.hpp"

#include <vector>

namespace loopspy {

RemoteAddr TypeNames::type_of(RemoteAddr object) const {
    if (object.value == 0) return RemoteAddr{0};
    return RemoteAddr{memory_.read_u64(RemoteAddr{object.value + layout_.object_type}).value_or(0)};
}

const std::string& TypeNames::of_type(RemoteAddr type) {
    if (type.value == 0) return empty_;
    auto it = names_.find(type.value);
    if (it != names_.end()) return it->second;
    std::string name;
    if (auto p = memory_.read_u64(RemoteAddr{type.value + layout_.type_name}); p && *p) {
        std::vector<std::byte> bytes = memory_.read_prefix(RemoteAddr{*p}, 128);
        for (std::byte b : bytes) {
            char c = static_cast<char>(b);
            if (c == '\0') break;
            name.push_back(c);
        }
    }
    // Only real names are cached: a failed read may succeed once the type is fully set up.
    if (name.empty()) return empty_;
    return names_.emplace(type.value, std::move(name)).first->second;
}

const std::string& TypeNames::of_object(RemoteAddr object) { return of_type(type_of(object)); }

}  // namespace loopspy
