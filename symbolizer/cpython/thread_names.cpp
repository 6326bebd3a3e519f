#include "symbolizer/cpython/thread_names.hpp"

#include "symbolizer/cpython/object_layout.hpp"
#include "symbolizer/cpython/py_objects.hpp"
#include "symbolizer/cpython/type_names.hpp"

namespace loopspy {

std::unordered_map<Tid, std::string> read_threading_names(const RemoteMemory& memory, const Interpreter& interp) {
    std::unordered_map<Tid, std::string> names;
    const ObjectLayout* layout = object_layout(interp.version.minor());
    if (!layout || !layout->interp_modules) return names;
    TypeNames types(memory, interp.layout);
    PyObjectReader objects(memory, interp, *layout, types);
    auto globals = objects.module_globals("threading");
    if (!globals) return names;
    auto active = objects.dict_get(*globals, "_active");
    if (!active || types.of_object(RemoteAddr{*active}) != "dict") return names;
    for (const auto& [ident, thread] : objects.dict_items(*active)) {
        auto name_obj = objects.attribute(thread, "_name");
        auto id_obj = objects.attribute(thread, "_native_id");
        if (!name_obj || !id_obj) continue;
        auto name = objects.str(*name_obj);
        auto id = objects.small_int(*id_obj);  // None until the thread has started
        if (name && id && *id > 0 && *id < (1ll << 31)) names[Tid{static_cast<std::int32_t>(*id)}] = *name;
    }
    return names;
}

}  // namespace loopspy
