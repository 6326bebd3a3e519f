#include "symbolizer/asyncio/tasks_module_sets.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "symbolizer/frames/code_symbolizer.hpp"
#include "symbolizer/asyncio/coroutine_chain.hpp"
#include "symbolizer/cpython/object_layout.hpp"
#include "symbolizer/cpython/pystring.hpp"
#include "symbolizer/cpython/py_objects.hpp"

namespace loopspy {
namespace {

using namespace objects;

// Bounds on what a damaged or hostile target can make us read.
constexpr std::uint64_t kMaxEntries = 1 << 16, kMaxSetSlots = 1 << 20;

class ModuleSetsTaskReader final : public TaskReader {
public:
    ModuleSetsTaskReader(const RemoteMemory& memory, const Interpreter& interp, const ObjectLayout& o)
        : m_(memory), interp_(interp), o_(o), types_(memory, interp.layout), objects_(memory, interp, o, types_) {}

    Result<std::vector<RawTask>> read_tasks() override {
        std::vector<RawTask> out;
        std::vector<std::uint64_t> addrs;
        if (!find_containers()) return out;  // asyncio not imported (yet)
        // The WeakSet's set of weak references, and (3.12+) the plain set of eager tasks.
        if (auto data = attribute(scheduled_, "data")) {
            auto refs = set_items(*data);
            if (!refs) return make_error(ErrorKind::Remote, "asyncio's set of tasks could not be read");
            for (std::uint64_t ref : *refs) {
                if (types_.of_object(RemoteAddr{ref}) != "weakref.ReferenceType" && types_.of_object(RemoteAddr{ref}) != "weakref") continue;
                if (auto t = m_.read_u64(RemoteAddr{ref + kWeakrefObject}); t && *t) addrs.push_back(*t);
            }
        }
        if (eager_) {
            auto eager = set_items(eager_);
            if (!eager) return make_error(ErrorKind::Remote, "asyncio's set of eager tasks could not be read");
            addrs.insert(addrs.end(), eager->begin(), eager->end());
        }
        std::unordered_set<std::uint64_t> seen;
        std::unordered_map<std::uint64_t, std::size_t> index;
        for (std::uint64_t a : addrs) {
            if (!seen.insert(a).second) continue;
            if (auto t = read_task(a)) {
                index[a] = out.size();
                out.push_back(std::move(*t));
            }
        }
        link_awaiters(out, index);
        std::erase_if(names_, [&](const auto& kv) { return kv.second.second != generation_; });
        ++generation_;
        return out;
    }

    std::optional<TaskFinder> task_finder() const override {
        if (!current_tasks_) return std::nullopt;
        return TaskFinder{RemoteAddr{current_tasks_}, 0, o_.task_coro, o_.task_name};
    }

private:
    // ---- generic objects ----
    std::optional<std::string> str(std::uint64_t addr) const { return objects_.str(addr); }
    std::optional<std::uint64_t> dict_get(std::uint64_t dict, std::string_view key) const { return objects_.dict_get(dict, key); }
    std::optional<std::uint64_t> attribute(std::uint64_t obj, std::string_view name) const {
        return objects_.attribute(obj, name);
    }

    std::optional<std::vector<std::uint64_t>> set_items(std::uint64_t set) {
        return read_set_keys(m_, RemoteAddr{set}, kMaxSetSlots);
    }

    /// The items of a list (behind a pointer) or a tuple (inline), at most `max` of them.
    std::vector<std::uint64_t> items(std::uint64_t seq, std::size_t max) {
        std::vector<std::uint64_t> out;
        auto n = m_.read_u64(RemoteAddr{seq + kVarSize});
        if (!n || *n > max) return out;
        std::uint64_t at = types_.of_object(RemoteAddr{seq}) == "list" ? m_.read_u64(RemoteAddr{seq + kListItems}).value_or(0)
                                                                       : seq + kTupleItems;
        if (!at) return out;
        out.resize(*n);
        if (!m_.read(RemoteAddr{at}, std::as_writable_bytes(std::span(out)))) out.clear();
        return out;
    }

    // ---- asyncio ----
    bool find_containers() {
        // Found once; the objects live as long as asyncio is imported. Their types are checked
        // on every read.
        if (scheduled_ && types_.of_object(RemoteAddr{scheduled_}) == "WeakSet") return true;
        scheduled_ = eager_ = current_tasks_ = 0;
        auto globals = objects_.module_globals("asyncio.tasks");
        if (!globals) return false;
        // The dict of the task each loop runs now (the C module's, which asyncio.tasks imports).
        if (auto current = dict_get(*globals, "_current_tasks"); current && types_.of_object(RemoteAddr{*current}) == "dict") {
            current_tasks_ = *current;
        }
        auto scheduled = dict_get(*globals, o_.scheduled_tasks);
        if (!scheduled || types_.of_object(RemoteAddr{*scheduled}) != "WeakSet") return false;
        scheduled_ = *scheduled;
        if (o_.eager_tasks) {
            auto eager = dict_get(*globals, "_eager_tasks");
            if (eager && types_.of_object(RemoteAddr{*eager}) == "set") eager_ = *eager;
        }
        return true;
    }

    bool is_task_type(RemoteAddr type) {
        // The C Task, or a Python subclass of it.
        for (int depth = 0; depth < 8 && type.value; ++depth) {
            if (types_.of_type(type) == "_asyncio.Task") return true;
            type = RemoteAddr{m_.read_u64(RemoteAddr{type.value + kTypeBase}).value_or(0)};
        }
        return false;
    }

    std::optional<RawTask> read_task(std::uint64_t addr) {
        // Just the fields read (a read past the object's end can fail where the heap ends).
        std::array<std::byte, 256> buf{};
        const std::size_t need = std::max({o_.fut_state + 4, o_.task_fut_waiter + 8, o_.task_coro + 8, o_.task_name + 8,
                                           kFutCallbacks + 8, interp_.layout.object_type + 8});
        if (need > buf.size()) return std::nullopt;
        const std::span<std::byte> b(buf.data(), need);
        if (!m_.read(RemoteAddr{addr}, b)) return std::nullopt;
        if (!is_task_type(RemoteAddr{load_at<std::uint64_t>(b, interp_.layout.object_type).value_or(0)})) return std::nullopt;
        RawTask t;
        t.addr = RemoteAddr{addr};
        t.coro = RemoteAddr{load_at<std::uint64_t>(b, o_.task_coro).value_or(0)};
        t.done = load_at<std::int32_t>(b, o_.fut_state).value_or(0) != 0;
        t.waiting_on = RemoteAddr{load_at<std::uint64_t>(b, o_.task_fut_waiter).value_or(0)};
        std::uint64_t name = load_at<std::uint64_t>(b, o_.task_name).value_or(0);
        if (auto it = names_.find(name); it != names_.end()) {
            it->second.second = generation_;
            t.name = it->second.first;
        } else {
            auto n = task_name(name);
            if (!n) return std::nullopt;
            t.name = *n;
            names_.emplace(name, std::make_pair(*n, generation_));
        }
        callbacks_[addr] = {load_at<std::uint64_t>(b, kFutCallback0).value_or(0), load_at<std::uint64_t>(b, kFutCallbacks).value_or(0)};
        return t;
    }

    std::optional<std::string> task_name(std::uint64_t name) {
        if (auto s = str(name)) return s;
        if (types_.of_object(RemoteAddr{name}) != "int") return std::nullopt;
        return counter_task_name(m_, RemoteAddr{name}, o_.long_header);
    }

    /// The callbacks registered on a future: callback0 and each (callback, context) of callbacks.
    std::vector<std::uint64_t> callbacks_of(std::uint64_t fut) {
        std::vector<std::uint64_t> out;
        auto it = callbacks_.find(fut);
        std::uint64_t cb0 = 0, list = 0;
        if (it != callbacks_.end()) {
            cb0 = it->second.first;
            list = it->second.second;
        } else {
            cb0 = m_.read_u64(RemoteAddr{fut + kFutCallback0}).value_or(0);
            list = m_.read_u64(RemoteAddr{fut + kFutCallbacks}).value_or(0);
        }
        if (cb0) out.push_back(cb0);
        if (list && types_.of_object(RemoteAddr{list}) == "list") {
            for (std::uint64_t pair : items(list, 4096)) {
                auto cb = items(pair, 2);
                if (!cb.empty()) out.push_back(cb[0]);
            }
        }
        return out;
    }

    void link_awaiters(std::vector<RawTask>& tasks, const std::unordered_map<std::uint64_t, std::size_t>& index) {
        // Who waits on which future (gather's outer future, a plain future, a task).
        std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> waiting_on;
        for (const RawTask& t : tasks) {
            if (t.waiting_on.value) waiting_on[t.waiting_on.value].push_back(t.addr.value);
        }
        auto add = [&](RawTask& t, std::uint64_t awaiter) {
            if (awaiter == t.addr.value || !index.count(awaiter)) return;
            for (RemoteAddr a : t.awaited_by) {
                if (a.value == awaiter) return;
            }
            t.awaited_by.push_back(RemoteAddr{awaiter});
        };
        for (RawTask& t : tasks) {
            for (std::uint64_t cb : callbacks_of(t.addr.value)) {
                const std::string& type = types_.of_object(RemoteAddr{cb});
                if (type == "builtin_function_or_method" || type == "TaskWakeupMethWrapper") {
                    // await task: the awaiting task's wake-up, bound to it (before 3.11 a
                    // wrapper object of its own that holds the task).
                    const std::uint64_t at = type == "TaskWakeupMethWrapper" ? kWakeupTask : kCFunctionSelf;
                    std::uint64_t self = m_.read_u64(RemoteAddr{cb + at}).value_or(0);
                    if (index.count(self)) add(t, self);
                } else if (type == "function") {
                    // gather: a closure whose cell holds the outer future.
                    std::uint64_t closure = m_.read_u64(RemoteAddr{cb + o_.function_closure}).value_or(0);
                    if (!closure || types_.of_object(RemoteAddr{closure}) != "tuple") continue;
                    for (std::uint64_t cell : items(closure, 64)) {
                        std::uint64_t obj = m_.read_u64(RemoteAddr{cell + kCellRef}).value_or(0);
                        if (!obj || types_.of_object(RemoteAddr{obj}) != "_GatheringFuture") continue;
                        if (auto w = waiting_on.find(obj); w != waiting_on.end()) {
                            for (std::uint64_t awaiter : w->second) add(t, awaiter);
                        }
                        // A gather awaited by a gather: follow the outer future's own callbacks.
                        for (std::uint64_t outer_cb : callbacks_of(obj)) {
                            const std::string& outer_type = types_.of_object(RemoteAddr{outer_cb});
                            std::uint64_t self = 0;
                            if (outer_type == "builtin_function_or_method") {
                                self = m_.read_u64(RemoteAddr{outer_cb + kCFunctionSelf}).value_or(0);
                            } else if (outer_type == "TaskWakeupMethWrapper") {
                                self = m_.read_u64(RemoteAddr{outer_cb + kWakeupTask}).value_or(0);
                            } else {
                                continue;
                            }
                            if (index.count(self)) add(t, self);
                        }
                    }
                } else if (type == "method") {
                    // TaskGroup: its _on_task_done, awaited by the group's parent task.
                    std::uint64_t self = m_.read_u64(RemoteAddr{cb + kMethodSelf}).value_or(0);
                    if (!self || types_.of_object(RemoteAddr{self}) != "TaskGroup") continue;
                    if (auto parent = attribute(self, "_parent_task")) add(t, *parent);
                }
            }
        }
        callbacks_.clear();
    }

    const RemoteMemory& m_;
    const Interpreter& interp_;
    const ObjectLayout& o_;
    TypeNames types_;
    PyObjectReader objects_;
    std::uint64_t scheduled_ = 0, eager_ = 0, current_tasks_ = 0;
    std::unordered_map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> callbacks_;  // task -> callback0, callbacks
    std::unordered_map<std::uint64_t, std::pair<std::string, std::uint64_t>> names_;      // name object -> name, generation
    std::uint64_t generation_ = 0;
};

}  // namespace

std::unique_ptr<TaskReader> make_module_sets_task_reader(const RemoteMemory& memory, const Interpreter& interp,
                                                         const ObjectLayout& objects) {
    return std::make_unique<ModuleSetsTaskReader>(memory, interp, objects);
}

}  // namespace loopspy
