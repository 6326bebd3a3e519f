#include "symbolizer/asyncio/coroutine_chain.hpp"
#include "symbolizer/frames/frame_decode.hpp"

#include <algorithm>
#include <array>

namespace loopspy {

bool is_generator_type(const std::string& type_name) {
    return type_name == "coroutine" || type_name == "generator" || type_name == "async_generator";
}

CoroutineChain read_coroutine_chain(const RemoteMemory& memory, const PythonLayout& l, TypeNames& types,
                                    RemoteAddr coro, int max_depth) {
    CoroutineChain chain;
    auto torn = [] {
        CoroutineChain running;
        running.state = CoroutineState::Executing;
        return running;
    };
    const std::uint64_t tag_mask = ~static_cast<std::uint64_t>(l.executable_tag_bits);
    // The generator's header and its embedded frame, read at once.
    const std::size_t want = static_cast<std::size_t>(l.gen_iframe + l.frame_size);
    std::array<std::byte, 512> buf{};
    if (want > buf.size()) return chain;
    std::span<const std::byte> bytes(buf.data(), want);

    RemoteAddr obj = coro;
    for (int depth = 0; depth < max_depth && obj.value != 0; ++depth) {
        const std::string& type = types.of_object(obj);
        if (!is_generator_type(type)) {
            if (type == "_asyncio.FutureIter" || type == "FutureIter") {
                // A Future's __await__ iterator: the future follows the object header.
                obj = RemoteAddr{memory.read_u64(RemoteAddr{obj.value + 16}).value_or(0)};
                chain.awaiting = types.of_object(obj);
            } else {
                chain.awaiting = type;
            }
            chain.awaited = obj;
            break;
        }
        if (!memory.read(obj, std::span<std::byte>(buf.data(), want))) {
            if (depth > 0) return torn();  // freed under the read: the task moved on
            break;
        }
        auto state = load_at<std::int8_t>(bytes, l.gen_frame_state).value_or(0);
        bool suspended = state == l.gen_state_suspended || state == l.gen_state_yield_from;
        if (depth == 0) {
            chain.state = suspended                         ? CoroutineState::Suspended
                          : state == l.gen_state_executing  ? CoroutineState::Executing
                          : state < l.gen_state_suspended   ? CoroutineState::Created
                                                            : CoroutineState::Finished;
        }
        if (!suspended) {
            // The outermost coroutine was suspended when read, one below it is not: the task
            // resumed while its chain was read (it runs from the outermost coroutine inwards).
            // What was read is half of two states; the truth is that it ran.
            if (depth > 0) return torn();
            break;
        }
        const std::uint64_t frame = obj.value + l.gen_iframe;
        const loopspy_frame f = decode_frame(bytes.subspan(l.gen_iframe), l, static_cast<std::uint8_t>(l.owner_generator));
        if (f.code == 0) {
            // A suspended coroutine always has its code: this one was read mid-change.
            if (depth > 0 || chain.state == CoroutineState::Suspended) return torn();
            break;
        }
        chain.frames.push_back(f);
        // 3.13+ tell a `yield` from an `await`; before, only the object's type can.
        if (l.gen_state_yield_from != l.gen_state_suspended && state != l.gen_state_yield_from) break;
        if (l.frame_stacktop != kNone) {
            auto stacktop = load_at<std::int32_t>(bytes, l.gen_iframe + l.frame_stacktop);
            if (!stacktop || *stacktop <= 0 || *stacktop > 4096) break;
            std::uint64_t top = frame + l.frame_localsplus + 8 * static_cast<std::uint64_t>(*stacktop - 1);
            obj = RemoteAddr{memory.read_u64(RemoteAddr{top}).value_or(0)};
        } else if (l.frame_stackpointer != kNone) {
            std::uint64_t sp = load_at<std::uint64_t>(bytes, l.gen_iframe + l.frame_stackpointer).value_or(0) & tag_mask;
            if (sp <= frame + l.frame_localsplus || sp > frame + l.frame_localsplus + 8 * 4096) break;
            // The awaited object is on top of the stack (3.14), or just under the value being
            // sent to it (3.15 keeps that slot, holding a tagged NULL, while suspended).
            std::array<std::uint64_t, 2> slots{};
            if (!memory.read(RemoteAddr{sp - 16}, std::as_writable_bytes(std::span(slots)))) break;
            std::uint64_t top = slots[1] & tag_mask;
            if (top == 0 && sp - 16 >= frame + l.frame_localsplus) top = slots[0] & tag_mask;
            obj = RemoteAddr{top};
        } else {
            break;
        }
    }
    std::reverse(chain.frames.begin(), chain.frames.end());
    return chain;
}

}  // namespace loopspy
