#include "symbolizer/cpython/thread_states.hpp"

#include <algorithm>
#include <unordered_set>

#include "symbolizer/process/proc_maps.hpp"

namespace loopspy {

Result<std::vector<ThreadState>> read_thread_states(const RemoteMemory& memory, const Interpreter& interp) {
    const PythonLayout& l = interp.layout;
    std::vector<ThreadState> out;
    auto head = memory.read_u64(RemoteAddr{interp.runtime.value + l.runtime_interpreters_head});
    if (!head) return make_error(ErrorKind::Remote, "cannot read _PyRuntime.interpreters.head");

    std::unordered_set<std::uint64_t> seen;
    std::uint64_t is = *head;
    for (int i = 0; is != 0 && i < 64 && seen.insert(is).second; ++i) {
        std::uint64_t id = 0;
        if (l.interp_id != kNone) id = memory.read_value<std::int64_t>(RemoteAddr{is + l.interp_id}).value_or(0);
        auto ts = memory.read_u64(RemoteAddr{is + l.interp_threads_head});
        std::uint64_t t = ts.value_or(0);
        for (int j = 0; t != 0 && j < 65536 && seen.insert(t).second; ++j) {
            auto native = memory.read_value<std::uint64_t>(RemoteAddr{t + l.tstate_native_thread_id});
            if (!native) break;
            // native_thread_id is 0 until the thread has started running.
            if (*native != 0 && *native < (1ull << 31)) {
                const Tid tid{static_cast<std::int32_t>(*native)};
                out.push_back({tid, tid, RemoteAddr{t}, id});
            }
            t = memory.read_u64(RemoteAddr{t + l.tstate_next}).value_or(0);
        }
        is = memory.read_u64(RemoteAddr{is + l.interp_next}).value_or(0);
    }
    // native_thread_id is the id in the target's own PID namespace; the kernel side and /proc
    // speak loopspy's. A thread not (yet) listed under /proc is left out until the next read.
    if (!out.empty()) {
        const std::unordered_map<Tid, Tid> seen_as = own_thread_ids(memory.pid());
        if (!seen_as.empty()) {
            std::erase_if(out, [&](ThreadState& ts) {
                auto it = seen_as.find(ts.tid);
                if (it == seen_as.end()) return true;
                ts.tid = it->second;
                return false;
            });
        } else {
            // Only the process's own threads: a child just forked still holds its parent's
            // thread states (and ids) until CPython's after-fork code has cleared them.
            const std::vector<Tid> threads = list_threads(memory.pid());
            const std::unordered_set<Tid> own(threads.begin(), threads.end());
            std::erase_if(out, [&](const ThreadState& ts) { return !own.count(ts.tid); });
        }
    }
    return out;
}

std::vector<RemoteAddr> read_gils(const RemoteMemory& memory, const Interpreter& interp) {
    const PythonLayout& l = interp.layout;
    std::vector<RemoteAddr> out;
    if (l.gil_size == 0 || l.gil_size == kNone) return out;
    if (l.runtime_gil != kNone) {
        out.push_back(RemoteAddr{interp.runtime.value + l.runtime_gil});
        return out;
    }
    if (l.interp_gil == kNone) return out;
    auto head = memory.read_u64(RemoteAddr{interp.runtime.value + l.runtime_interpreters_head});
    std::unordered_set<std::uint64_t> seen;
    std::uint64_t is = head.value_or(0);
    for (int i = 0; is != 0 && i < 64 && seen.insert(is).second; ++i) {
        if (auto gil = memory.read_u64(RemoteAddr{is + l.interp_gil}); gil && *gil != 0) {
            if (std::find(out.begin(), out.end(), RemoteAddr{*gil}) == out.end()) out.push_back(RemoteAddr{*gil});
        }
        is = memory.read_u64(RemoteAddr{is + l.interp_next}).value_or(0);
    }
    return out;
}

}  // namespace loopspy
