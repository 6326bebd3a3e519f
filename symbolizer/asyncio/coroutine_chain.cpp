#include "symbolizer/asyncio/coroutine_chain.hpp"
#include "symbolizer/frames/frame_decode.hpp"

#include <algorithm>
#include <array>
#include <optional>

namespace loopspy {

bool is_generator_type(const std::string& type_name) {
    return type_name == "coroutine" || type_name == "generator" || type_name == "async_generator";
}

namespace {

constexpr std::int64_t kMaxStack = 4096;  // value-stack slots a sane frame has at most

/// One coroutine of a chain, as read: its frame state (the layout's gen_state_* numbering), its
/// frame, and the object on top of its value stack (what it awaits, if it is in an `await`).
struct Link {
    std::int8_t state = 0;
    bool yield_from = false;  // 3.13+ tell an `await` from a `yield`; before, state == suspended
    bool changed = false;     // read while it changed (its frame was no longer its own)
    loopspy_frame frame{};
    std::optional<std::uint64_t> top;  // nullopt when the stack could not be read
};

/// 3.11+: the frame is embedded in the coroutine object, which holds its state.
std::optional<Link> read_embedded(const RemoteMemory& memory, const PythonLayout& l, RemoteAddr obj) {
    const std::uint64_t tag_mask = ~static_cast<std::uint64_t>(l.executable_tag_bits);
    const std::size_t want = static_cast<std::size_t>(l.gen_iframe + l.frame_size);
    std::array<std::byte, 512> buf{};
    if (want > buf.size()) return std::nullopt;
    std::span<const std::byte> bytes(buf.data(), want);
    if (!memory.read(obj, std::span<std::byte>(buf.data(), want))) return std::nullopt;
    Link link;
    link.state = load_at<std::int8_t>(bytes, l.gen_frame_state).value_or(0);
    link.yield_from = link.state == l.gen_state_yield_from;
    link.frame = decode_frame(bytes.subspan(l.gen_iframe), l, static_cast<std::uint8_t>(l.owner_generator));
    const std::uint64_t frame = obj.value + l.gen_iframe;
    if (l.frame_stacktop != kNone) {
        auto stacktop = load_at<std::int32_t>(bytes, l.gen_iframe + l.frame_stacktop);
        if (!stacktop || *stacktop <= 0 || *stacktop > kMaxStack) return link;
        std::uint64_t top = frame + l.frame_localsplus + 8 * static_cast<std::uint64_t>(*stacktop - 1);
        link.top = memory.read_u64(RemoteAddr{top}).value_or(0);
    } else if (l.frame_stackpointer != kNone) {
        std::uint64_t sp = load_at<std::uint64_t>(bytes, l.gen_iframe + l.frame_stackpointer).value_or(0) & tag_mask;
        if (sp <= frame + l.frame_localsplus || sp > frame + l.frame_localsplus + 8 * kMaxStack) return link;
        // The awaited object is on top of the stack (3.14), or just under the value being
        // sent to it (3.15 keeps that slot, holding a tagged NULL, while suspended).
        std::array<std::uint64_t, 2> slots{};
        if (!memory.read(RemoteAddr{sp - 16}, std::as_writable_bytes(std::span(slots)))) return link;
        std::uint64_t top = slots[1] & tag_mask;
        if (top == 0 && sp - 16 >= frame + l.frame_localsplus) top = slots[0] & tag_mask;
        link.top = top;
    }
    return link;
}

/// 3.8-3.10: the coroutine points at a PyFrameObject (gi_frame, NULL once it has finished), which
/// holds the state: f_state (3.10), or f_executing and f_lasti (3.8, 3.9: -1 before it starts).
std::optional<Link> read_frame_object(const RemoteMemory& memory, const PythonLayout& l, RemoteAddr obj) {
    auto frame = memory.read_u64(RemoteAddr{obj.value + l.gen_frame});
    if (!frame) return std::nullopt;
    Link link;
    if (*frame == 0) {
        link.state = static_cast<std::int8_t>(l.gen_state_executing + 1);  // finished
        return link;
    }
    std::array<std::byte, LOOPSPY_FRAME_READ_MAX> buf{};
    const std::size_t size = std::min<std::size_t>(l.frame_size, buf.size());
    std::span<const std::byte> bytes(buf.data(), size);
    if (!memory.read(RemoteAddr{*frame}, std::span<std::byte>(buf.data(), size))) return std::nullopt;
    // f_gen names the generator the frame belongs to: anything else is a frame read after the
    // coroutine let it go (it returned) and another took its memory.
    if (load_at<std::uint64_t>(bytes, l.frame_gen).value_or(0) != obj.value) {
        link.changed = true;
        return link;
    }
    const std::int32_t lasti = load_at<std::int32_t>(bytes, l.frame_lasti).value_or(-1);
    if (l.frame_state != kNone) {
        link.state = load_at<std::int8_t>(bytes, l.frame_state).value_or(0);
    } else {
        const bool executing = load_at<std::int8_t>(bytes, l.frame_executing).value_or(0) != 0;
        link.state = executing ? l.gen_state_executing
                     : lasti < 0 ? static_cast<std::int8_t>(l.gen_state_suspended - 1)  // created
                                 : l.gen_state_suspended;
    }
    link.frame = decode_frame(bytes, l, static_cast<std::uint8_t>(l.owner_generator));
    if (l.frame_stackdepth != kNone) {
        const std::uint64_t stack = load_at<std::uint64_t>(bytes, l.frame_valuestack).value_or(0);
        const std::int32_t depth = load_at<std::int32_t>(bytes, l.frame_stackdepth).value_or(0);
        if (!stack || depth <= 0 || depth > kMaxStack) return link;
        link.top = memory.read_u64(RemoteAddr{stack + 8 * static_cast<std::uint64_t>(depth - 1)}).value_or(0);
    } else {
        const std::uint64_t stack = load_at<std::uint64_t>(bytes, l.frame_valuestack).value_or(0);
        const std::uint64_t top = load_at<std::uint64_t>(bytes, l.frame_stacktop_ptr).value_or(0);
        if (!stack || top <= stack || top > stack + 8 * kMaxStack) return link;
        link.top = memory.read_u64(RemoteAddr{top - 8}).value_or(0);
    }
    return link;
}

}  // namespace

CoroutineChain read_coroutine_chain(const RemoteMemory& memory, const PythonLayout& l, TypeNames& types,
                                    RemoteAddr coro, int max_depth) {
    CoroutineChain chain;
    auto torn = [] {
        CoroutineChain running;
        running.state = CoroutineState::Executing;
        return running;
    };
    const bool frame_objects = l.gen_frame != kNone;

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
        const std::optional<Link> link = frame_objects ? read_frame_object(memory, l, obj) : read_embedded(memory, l, obj);
        if (!link) {
            if (depth > 0) return torn();  // freed under the read: the task moved on
            break;
        }
        if (link->changed) return torn();
        const std::int8_t state = link->state;
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
        if (link->frame.code == 0) {
            // A suspended coroutine always has its code: this one was read mid-change.
            if (depth > 0 || chain.state == CoroutineState::Suspended) return torn();
            break;
        }
        chain.frames.push_back(link->frame);
        // 3.13+ tell a `yield` from an `await`; before, only the object's type can.
        if (l.gen_state_yield_from != l.gen_state_suspended && !link->yield_from) break;
        if (!link->top) break;
        obj = RemoteAddr{*link->top};
    }
    std::reverse(chain.frames.begin(), chain.frames.end());
    return chain;
}

}  // namespace loopspy
