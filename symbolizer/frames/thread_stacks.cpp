#include "symbolizer/frames/thread_stacks.hpp"

#include <array>

#include "symbolizer/frames/frame_decode.hpp"

namespace loopspy {

RawThreadStack read_thread_stack(const RemoteMemory& memory, const PythonLayout& l, RemoteAddr tstate,
                                 std::size_t max_frames) {
    RawThreadStack out;
    std::uint64_t frame = current_frame(memory, l, tstate);
    std::array<std::byte, LOOPSPY_FRAME_READ_MAX> buf{};
    const std::size_t size = std::min<std::size_t>(l.frame_size, buf.size());
    std::span<const std::byte> bytes(buf.data(), size);
    while (frame != 0) {
        if (out.frames.size() >= max_frames) {
            out.truncated = true;
            break;
        }
        if (!memory.read(RemoteAddr{frame}, std::span<std::byte>(buf.data(), size))) {
            out.read_error = true;
            break;
        }
        const std::uint8_t owner = frame_owner(bytes, l);
        if (owner != l.owner_cstack) {
            out.frames.push_back(decode_frame(bytes, l, owner));
            if (owner == l.owner_generator) out.coro = RemoteAddr{frame_coroutine(bytes, l, frame)};
        }
        frame = load_at<std::uint64_t>(bytes, l.frame_previous).value_or(0);
    }
    return out;
}

}  // namespace loopspy
