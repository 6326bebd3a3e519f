#include "symbolizer/asyncio/tasks_asyncio_debug.hpp"

#include <cstring>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "symbolizer/frames/code_symbolizer.hpp"
#include "symbolizer/asyncio/coroutine_chain.hpp"
#include "symbolizer/process/elf_file.hpp"
#include "symbolizer/process/proc_maps.hpp"
#include "symbolizer/cpython/pystring.hpp"
#include "symbolizer/cpython/thread_states.hpp"
#include "symbolizer/cpython/py_objects.hpp"

namespace loopspy {
namespace {

// PySetObject (Include/cpython/setobject.h, unchanged 3.11-3.15): mask at 32, table at 40;
// each setentry is {PyObject *key; Py_hash_t hash}.
// Bounds: no target keeps more tasks than this in one list, or awaiters of one task.
constexpr int kMaxTasksPerList = 1 << 20;
constexpr std::uint64_t kMaxSetSlots = 1 << 20;

class AsyncioDebugTaskReader final : public TaskReader {
public:
    AsyncioDebugTaskReader(const RemoteMemory& memory, const Interpreter& interp, const ObjectLayout& objects)
        : memory_(memory),
          interp_(interp),
          objects_(objects),
          types_(memory, interp.layout),
          unicode_(unicode_layout_of(interp.layout)) {}

    Result<std::vector<RawTask>> read_tasks() override {
        if (!offsets_) {
            // The section exists once `_asyncio` is loaded; until then there are no tasks.
            auto found = find_offsets();
            if (!found) return std::vector<RawTask>{};
            offsets_ = *found;
        }
        const AsyncioDebugOffsets& o = *offsets_;
        auto states = read_thread_states(memory_, interp_);
        if (!states) return states.error();
        std::vector<RawTask> out;
        std::unordered_set<std::uint64_t> seen;
        ++generation_;
        std::unordered_set<std::uint64_t> interps;
        for (const ThreadState& ts : *states) {
            read_list(ts.tstate.value + o.thread_tasks_head, out, seen);
            if (auto is = memory_.read_u64(RemoteAddr{ts.tstate.value + interp_.layout.tstate_interp}); is && *is) {
                interps.insert(*is);
            }
        }
        // Tasks of threads that have exited move to their interpreter's list.
        for (std::uint64_t is : interps) read_list(is + o.interp_tasks_head, out, seen);
        if (std::exchange(set_failed_, false)) return make_error(ErrorKind::Remote, "a set of asyncio tasks could not be read");
        // Names of tasks no longer seen are forgotten: their objects may be freed and reused.
        std::erase_if(names_, [&](const auto& kv) { return kv.second.second != generation_; });
        return out;
    }

    std::optional<TaskFinder> task_finder() const override {
        if (!offsets_) return std::nullopt;
        return TaskFinder{RemoteAddr{0}, offsets_->thread_running_task, offsets_->task_coro, offsets_->task_name};
    }

private:
    std::optional<AsyncioDebugOffsets> find_offsets() {
        auto maps = read_proc_maps(memory_.pid());
        if (!maps) return std::nullopt;
        std::vector<const Mapping*> candidates;
        for (const Mapping& m : *maps) {
            if (m.path.empty() || m.offset != 0) continue;
            std::string_view base = m.path;
            if (auto slash = base.rfind('/'); slash != std::string_view::npos) base.remove_prefix(slash + 1);
            if (base.starts_with("_asyncio") || m.path == interp_.binary_path) candidates.push_back(&m);
        }
        for (const Mapping* m : candidates) {
            auto elf = ElfFile::open(mapping_file_path(memory_.pid(), *m));
            if (!elf) continue;
            auto section = elf->find_section(".AsyncioDebug");
            if (!section) continue;
            if (auto parsed = parse_asyncio_debug(elf->section_bytes(*section))) return *parsed;
        }
        return std::nullopt;
    }

    void read_list(std::uint64_t head, std::vector<RawTask>& out, std::unordered_set<std::uint64_t>& seen) {
        const AsyncioDebugOffsets& o = *offsets_;
        std::uint64_t node = memory_.read_u64(RemoteAddr{head}).value_or(0);
        for (int i = 0; node != 0 && node != head && i < kMaxTasksPerList; ++i) {
            std::uint64_t task = node - o.task_node;
            if (!seen.insert(task).second) break;  // a cycle: the list changed under us
            std::uint64_t next = memory_.read_u64(RemoteAddr{node}).value_or(0);  // llist_node.next is first
            if (auto t = read_task(RemoteAddr{task})) out.push_back(std::move(*t));
            node = next;
        }
    }

    std::optional<RawTask> read_task(RemoteAddr task) {
        const AsyncioDebugOffsets& o = *offsets_;
        std::vector<std::byte> bytes(o.task_size);
        if (!memory_.read(task, bytes)) return std::nullopt;
        if (load_at<std::uint8_t>(bytes, o.task_is_task).value_or(0) != 1) return std::nullopt;
        // A Task or a subclass of it: its type's name is checked for the C Task only.
        RemoteAddr type{load_at<std::uint64_t>(bytes, interp_.layout.object_type).value_or(0)};
        const std::string& type_name = types_.of_type(type);
        if (type_name.empty()) return std::nullopt;
        RawTask t;
        t.addr = task;
        t.coro = RemoteAddr{load_at<std::uint64_t>(bytes, o.task_coro).value_or(0)};
        // The coroutine is cleared when the task finishes.
        t.done = t.coro.value == 0;
        if (!t.done && !is_generator_type(types_.of_object(t.coro))) {
            // Any awaitable may be wrapped, but a coroutine object is what asyncio drives; a
            // reused address shows up as anything else.
            if (types_.of_object(t.coro).empty()) return std::nullopt;
        }
        auto name = read_name(RemoteAddr{load_at<std::uint64_t>(bytes, o.task_name).value_or(0)});
        if (!name) return std::nullopt;
        t.name = std::move(*name);
        RemoteAddr awaited_by{load_at<std::uint64_t>(bytes, o.task_awaited_by).value_or(0)};
        bool is_set = load_at<std::uint8_t>(bytes, o.task_awaited_by_is_set).value_or(0) != 0;
        if (awaited_by.value != 0) {
            if (is_set) read_set(awaited_by, t.awaited_by);
            else t.awaited_by.push_back(awaited_by);
        }
        return t;
    }

    std::optional<std::string> read_name(RemoteAddr name) {
        // A task holds its name: while the same task shows the same name object, it is the same
        // name (renaming stores a new object).
        if (auto it = names_.find(name.value); it != names_.end()) {
            it->second.second = generation_;
            return it->second.first;
        }
        auto decoded = decode_name(name);
        if (decoded) names_.emplace(name.value, std::make_pair(*decoded, generation_));
        return decoded;
    }

    std::optional<std::string> decode_name(RemoteAddr name) {
        const std::string& type = types_.of_object(name);
        if (type == "str") {
            std::vector<std::byte> bytes = memory_.read_prefix(name, 512);
            auto s = decode_pystring(bytes, unicode_, 200);
            if (!s) return std::nullopt;
            return *s;
        }
        // Unnamed tasks keep a counter and are called "Task-N" when asked.
        if (type == "int") return counter_task_name(memory_, name, objects_.long_header);
        return std::nullopt;
    }

    void read_set(RemoteAddr set, std::vector<RemoteAddr>& out) {
        if (types_.of_object(set) != "set") return;
        auto keys = read_set_keys(memory_, set, kMaxSetSlots);
        if (!keys) {
            set_failed_ = true;
            return;
        }
        for (std::uint64_t key : *keys) {
            // Deleted slots hold a dummy object, which is no Task.
            if (types_.of_object(RemoteAddr{key}).empty()) continue;
            out.push_back(RemoteAddr{key});
        }
    }

    bool set_failed_ = false;  // a set of tasks was unreadable in this read
    const RemoteMemory& memory_;
    const Interpreter& interp_;
    const ObjectLayout& objects_;
    TypeNames types_;
    UnicodeLayout unicode_;
    std::optional<AsyncioDebugOffsets> offsets_;
    std::unordered_map<std::uint64_t, std::pair<std::string, std::uint64_t>> names_;  // str address -> (name, generation seen)
    std::uint64_t generation_ = 0;
};

}  // namespace

Result<AsyncioDebugOffsets> parse_asyncio_debug(std::span<const std::byte> section) {
    constexpr std::size_t kFields = 13;
    if (section.size() < kFields * 8) return make_error(ErrorKind::BadInput, "AsyncioDebug section too small");
    std::uint64_t v[kFields];
    std::memcpy(v, section.data(), sizeof v);
    AsyncioDebugOffsets o{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
    auto inside = [](std::uint64_t off, std::uint64_t size, std::uint64_t width) { return off + width <= size; };
    bool ok = o.task_size > 0 && o.task_size <= 4096 && inside(o.task_name, o.task_size, 8) &&
              inside(o.task_awaited_by, o.task_size, 8) && inside(o.task_is_task, o.task_size, 1) &&
              inside(o.task_awaited_by_is_set, o.task_size, 1) && inside(o.task_coro, o.task_size, 8) &&
              inside(o.task_node, o.task_size, 16) && o.interp_size > 0 && o.interp_size <= (1 << 20) &&
              inside(o.interp_tasks_head, o.interp_size, 16) && o.thread_size > 0 && o.thread_size <= (1 << 20) &&
              inside(o.thread_running_task, o.thread_size, 8) && inside(o.thread_tasks_head, o.thread_size, 16);
    if (!ok) return make_error(ErrorKind::BadInput, "AsyncioDebug section has offsets outside their structs");
    return o;
}

std::unique_ptr<TaskReader> make_asyncio_debug_task_reader(const RemoteMemory& memory, const Interpreter& interp,
                                                           const ObjectLayout& objects) {
    return std::make_unique<AsyncioDebugTaskReader>(memory, interp, objects);
}

}  // namespace loopspy
