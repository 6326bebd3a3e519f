// A fake target for unit tests: objects laid out as CPython 3.12 lays them out, written into this
// test process's own memory, which RemoteMemory reads like any other process's.
#pragma once

#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "symbolizer/frames/code_symbolizer.hpp"

namespace loopspy::testing {

/// Four pages of this process, mapped for fake objects, unmappable to play a process that is gone.
class FakeHeap {
public:
    FakeHeap() {
        void* p = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        REQUIRE(p != MAP_FAILED);
        base_ = static_cast<std::byte*>(p);
    }
    ~FakeHeap() { unmap(); }
    FakeHeap(const FakeHeap&) = delete;
    FakeHeap& operator=(const FakeHeap&) = delete;
    void unmap() {
        if (mapped_) ::munmap(base_, kSize);
        mapped_ = false;
    }
    std::byte* at(std::size_t off) { return base_ + off; }
    std::uint64_t addr(std::size_t off) const { return reinterpret_cast<std::uint64_t>(base_ + off); }

private:
    static constexpr std::size_t kSize = 4 * 4096;
    std::byte* base_ = nullptr;
    bool mapped_ = true;
};

template <typename T>
void put(std::byte* object, std::uint64_t off, T value) {
    std::memcpy(object + off, &value, sizeof(value));
}

/// A compact ASCII str object holding `text`.
inline void write_str(std::byte* object, const PythonLayout& l, const char* text) {
    std::memset(object, 0, l.ascii_object_size + std::strlen(text) + 1);
    put<std::int64_t>(object, l.unicode_length, static_cast<std::int64_t>(std::strlen(text)));
    put<std::uint32_t>(object, l.unicode_state,
                       (1u << l.unicode_kind_shift) | (1u << l.unicode_compact_bit) | (1u << l.unicode_ascii_bit));
    std::memcpy(object + l.ascii_object_size, text, std::strlen(text));
}

/// A 3.12 interpreter's code objects in this process: a code type, a file name, two function
/// names, and code objects written where a test asks.
struct FakeTarget {
    FakeTarget() : memory(Pid{static_cast<int>(::getpid())}) {
        const PythonLayout* l = python_layout(12);
        REQUIRE(l != nullptr);
        interp.layout = *l;
        interp.version = PythonVersion{0x030C01F0};
        interp.code_type = RemoteAddr{heap.addr(kCodeType)};
        write_str(heap.at(kFile), layout(), "app.py");
        write_str(heap.at(kHandler), layout(), "handle_request");
        write_str(heap.at(kRender), layout(), "render_page");
    }
    const PythonLayout& layout() const { return interp.layout; }

    /// A code object at `off` named `name`, first line `line`.
    void write_code(std::size_t off, std::size_t name, int line) {
        const PythonLayout& l = layout();
        std::byte* code = heap.at(off);
        std::memset(code, 0, l.code_code_adaptive);
        put<std::uint64_t>(code, l.object_type, heap.addr(kCodeType));
        put<std::uint64_t>(code, l.code_filename, heap.addr(kFile));
        put<std::uint64_t>(code, l.code_name, heap.addr(name));
        put<std::uint64_t>(code, l.code_qualname, heap.addr(name));
        put<std::int32_t>(code, l.code_firstlineno, line);
    }
    /// One interpreter with one thread state, whose native id is `tid` (a thread of this process,
    /// which the reader checks under /proc): the thread list a recorder reads.
    void write_thread_list(Tid tid) {
        const PythonLayout& l = layout();
        std::memset(heap.at(kRuntime), 0, 3 * kObjectRoom);
        put<std::uint64_t>(heap.at(kRuntime), l.runtime_interpreters_head, heap.addr(kInterpreter));
        put<std::uint64_t>(heap.at(kInterpreter), l.interp_threads_head, heap.addr(kThreadState));
        put<std::uint64_t>(heap.at(kThreadState), l.tstate_native_thread_id, static_cast<std::uint64_t>(tid.value));
        interp.runtime = RemoteAddr{heap.addr(kRuntime)};
    }
    /// What the allocator leaves where a code object was freed: not a code object any more.
    void free_code(std::size_t off) { std::memset(heap.at(off), 0xa5, layout().code_code_adaptive); }

    std::string name_at(CodeSymbolizer& s, std::size_t off) {
        const CodeInfo* info = s.code(CodeAddr{heap.addr(off)});
        return info ? info->qualname : "<unknown>";
    }
    void generations(CodeSymbolizer& s, std::uint64_t n) {
        for (std::uint64_t i = 0; i < n; ++i) s.new_generation();
    }

    static constexpr std::size_t kCodeType = 0, kFile = 256, kHandler = 512, kRender = 768, kCode = 4096;
    static constexpr std::size_t kObjectRoom = 1024, kRuntime = 3 * 4096, kInterpreter = kRuntime + kObjectRoom,
                                 kThreadState = kInterpreter + kObjectRoom;
    FakeHeap heap;
    RemoteMemory memory;
    Interpreter interp;
};

}  // namespace loopspy::testing
