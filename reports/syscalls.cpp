#include "reports/syscalls.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "recording/profile.hpp"

namespace loopspy {

namespace {

// Sorted by number. The calls a thread blocks in, and those common enough to show up while a
// thread is descheduled in one (memory, process and file management).
constexpr std::pair<std::int32_t, std::string_view> kSyscalls[] = {
    {0, "read"}, {1, "write"}, {2, "open"}, {3, "close"}, {4, "stat"}, {5, "fstat"}, {6, "lstat"},
    {7, "poll"}, {8, "lseek"}, {9, "mmap"}, {10, "mprotect"}, {11, "munmap"}, {12, "brk"},
    {13, "rt_sigaction"}, {14, "rt_sigprocmask"}, {16, "ioctl"}, {17, "pread64"}, {18, "pwrite64"},
    {19, "readv"}, {20, "writev"}, {21, "access"}, {22, "pipe"}, {23, "select"}, {24, "sched_yield"},
    {25, "mremap"}, {26, "msync"}, {27, "mincore"}, {28, "madvise"}, {32, "dup"}, {33, "dup2"},
    {34, "pause"}, {35, "nanosleep"}, {39, "getpid"}, {40, "sendfile"}, {41, "socket"},
    {42, "connect"}, {43, "accept"}, {44, "sendto"}, {45, "recvfrom"}, {46, "sendmsg"},
    {47, "recvmsg"}, {48, "shutdown"}, {49, "bind"}, {50, "listen"}, {51, "getsockname"},
    {52, "getpeername"}, {53, "socketpair"}, {54, "setsockopt"}, {55, "getsockopt"}, {56, "clone"},
    {57, "fork"}, {58, "vfork"}, {59, "execve"}, {60, "exit"}, {61, "wait4"}, {62, "kill"},
    {63, "uname"}, {64, "semget"}, {65, "semop"}, {66, "semctl"}, {69, "msgsnd"}, {70, "msgrcv"},
    {72, "fcntl"}, {73, "flock"}, {74, "fsync"}, {75, "fdatasync"}, {76, "truncate"},
    {77, "ftruncate"}, {78, "getdents"}, {79, "getcwd"}, {80, "chdir"}, {82, "rename"},
    {83, "mkdir"}, {84, "rmdir"}, {85, "creat"}, {86, "link"}, {87, "unlink"}, {88, "symlink"},
    {89, "readlink"}, {90, "chmod"}, {91, "fchmod"}, {92, "chown"}, {93, "fchown"},
    {96, "gettimeofday"}, {97, "getrlimit"}, {98, "getrusage"}, {101, "ptrace"},
    {128, "rt_sigtimedwait"}, {130, "rt_sigsuspend"}, {137, "statfs"}, {138, "fstatfs"},
    {162, "sync"}, {186, "gettid"}, {200, "tkill"}, {202, "futex"}, {206, "io_setup"},
    {208, "io_getevents"}, {209, "io_submit"}, {213, "epoll_create"}, {217, "getdents64"},
    {219, "restart_syscall"}, {221, "fadvise64"}, {228, "clock_gettime"}, {230, "clock_nanosleep"},
    {231, "exit_group"}, {232, "epoll_wait"}, {233, "epoll_ctl"}, {234, "tgkill"}, {247, "waitid"},
    {257, "openat"}, {258, "mkdirat"}, {262, "newfstatat"}, {263, "unlinkat"}, {264, "renameat"},
    {265, "linkat"}, {266, "symlinkat"}, {267, "readlinkat"}, {268, "fchmodat"}, {269, "faccessat"},
    {270, "pselect6"}, {271, "ppoll"}, {275, "splice"}, {276, "tee"}, {277, "sync_file_range"},
    {278, "vmsplice"}, {280, "utimensat"}, {281, "epoll_pwait"}, {282, "signalfd"},
    {283, "timerfd_create"}, {284, "eventfd"}, {285, "fallocate"}, {288, "accept4"},
    {289, "signalfd4"}, {290, "eventfd2"}, {291, "epoll_create1"}, {292, "dup3"}, {293, "pipe2"},
    {295, "preadv"}, {296, "pwritev"}, {299, "recvmmsg"}, {306, "syncfs"}, {307, "sendmmsg"},
    {310, "process_vm_readv"}, {311, "process_vm_writev"}, {316, "renameat2"}, {318, "getrandom"},
    {319, "memfd_create"}, {322, "execveat"}, {326, "copy_file_range"}, {327, "preadv2"},
    {328, "pwritev2"}, {332, "statx"}, {425, "io_uring_setup"}, {426, "io_uring_enter"},
    {427, "io_uring_register"}, {434, "pidfd_open"}, {435, "clone3"}, {436, "close_range"},
    {437, "openat2"}, {439, "faccessat2"}, {441, "epoll_pwait2"}, {449, "futex_waitv"},
};

constexpr bool sorted_by_number() {
    for (std::size_t i = 1; i < std::size(kSyscalls); ++i) {
        if (kSyscalls[i - 1].first >= kSyscalls[i].first) return false;
    }
    return true;
}
static_assert(sorted_by_number());

}  // namespace

std::string_view x86_64_syscall_name(std::int32_t nr) {
    auto it = std::lower_bound(std::begin(kSyscalls), std::end(kSyscalls), nr,
                               [](const auto& entry, std::int32_t n) { return entry.first < n; });
    if (it == std::end(kSyscalls) || it->first != nr) return {};
    return it->second;
}

std::string off_cpu_leaf(std::int32_t syscall, std::uint32_t off_flags) {
    if (off_flags & kOffGil) return "<GIL wait>";
    return "<off-CPU: " + off_cpu_reason(syscall, off_flags) + ">";
}

std::string off_cpu_reason(std::int32_t syscall, std::uint32_t off_flags) {
    if (syscall == kNoSyscall || syscall < 0) {
        return (off_flags & kOffPreempted) ? "preempted" : "page fault/other";
    }
    std::string_view name = x86_64_syscall_name(syscall);
    if (!name.empty()) return std::string(name);
    return "syscall_" + std::to_string(syscall);
}

}  // namespace loopspy
