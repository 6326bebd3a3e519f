#include "symbolizer/cpython/thread_states.hpp"

#include <algorithm>
#include <unordered_set>

#include "symbolizer/process/proc_maps.hpp"

namespace loopspy {
namespace {

// glibc's offsetof(struct pthread, tid) on x86-64 (unchanged for many releases); another C
// library's is found by search.
constexpr std::uint64_t kGlibcPthreadTid = 0x2d0;
constexpr std::size_t kPthreadSearch = 0x800;

/// Before 3.11 a thread state has no native thread id: its thread_id is the thread's pthread_t,
/// the address of the C library's struct pthread, which holds the kernel's id. The id's offset
/// in it is the one at which the most thread states' pthreads hold an id of a thread of the
/// process (`own`: ids as the target sees them), glibc's first. Fills each state's tid, 0 where
/// none is found (a state whose thread has gone).
void native_ids_from_pthreads(const RemoteMemory& memory, const PythonLayout& l, std::vector<ThreadState>& states,
                              const std::unordered_set<Tid>& own) {
    std::vector<std::uint64_t> pthreads;
    for (const ThreadState& ts : states) {
        pthreads.push_back(memory.read_u64(RemoteAddr{ts.tstate.value + l.tstate_thread_id}).value_or(0));
    }
    auto is_own = [&](std::optional<std::int32_t> id) { return id && own.count(Tid{*id}) != 0; };
    std::size_t glibc_matches = 0;
    std::vector<std::int32_t> ids(states.size(), 0);
    for (std::size_t i = 0; i < states.size(); ++i) {
        auto id = pthreads[i] ? memory.read_value<std::int32_t>(RemoteAddr{pthreads[i] + kGlibcPthreadTid}) : std::nullopt;
        if (is_own(id)) {
            ids[i] = *id;
            ++glibc_matches;
        }
    }
    if (glibc_matches < states.size()) {
        // Another C library, or a state whose thread has gone: read each pthread's first bytes
        // once and look for the offset that explains the most of them.
        std::vector<std::vector<std::byte>> blocks;
        for (std::uint64_t p : pthreads) blocks.push_back(p ? memory.read_prefix(RemoteAddr{p}, kPthreadSearch) : std::vector<std::byte>{});
        std::size_t best = glibc_matches;
        std::uint64_t best_off = kGlibcPthreadTid;
        for (std::uint64_t off = 0; off + 4 <= kPthreadSearch; off += 4) {
            std::size_t n = 0;
            for (const auto& b : blocks) n += is_own(load_at<std::int32_t>(b, off)) ? 1 : 0;
            if (n > best) {
                best = n;
                best_off = off;
            }
        }
        if (best_off != kGlibcPthreadTid) {
            for (std::size_t i = 0; i < states.size(); ++i) {
                auto id = load_at<std::int32_t>(blocks[i], best_off);
                ids[i] = is_own(id) ? *id : 0;
            }
        }
    }
    for (std::size_t i = 0; i < states.size(); ++i) states[i].tid = states[i].own_tid = Tid{ids[i]};
}

}  // namespace

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
            if (l.tstate_native_thread_id == kNone) {
                out.push_back({Tid{0}, Tid{0}, RemoteAddr{t}, id});  // ids from the pthreads, below
                t = memory.read_u64(RemoteAddr{t + l.tstate_next}).value_or(0);
                continue;
            }
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
        if (l.tstate_native_thread_id == kNone) {
            std::unordered_set<Tid> own;
            if (!seen_as.empty()) {
                for (const auto& [inside, outside] : seen_as) own.insert(inside);
            } else {
                for (Tid t : list_threads(memory.pid())) own.insert(t);
            }
            native_ids_from_pthreads(memory, l, out, own);
            // A thread state made for a thread not started yet still holds its creator's
            // pthread_t: the older state (further down the list, which grows at its head) is the
            // creator's own.
            std::unordered_set<Tid> taken;
            for (auto it = out.rbegin(); it != out.rend(); ++it) {
                if (it->tid.value != 0 && !taken.insert(it->tid).second) it->tid = it->own_tid = Tid{0};
            }
            std::erase_if(out, [](const ThreadState& ts) { return ts.tid.value == 0; });
        }
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
