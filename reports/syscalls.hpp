// Names of the x86-64 system calls a thread can be found blocked in, for the off-CPU reports.
// The numbers are the x86-64 ABI's whatever machine reads the recording: the kernel side
// records them on x86-64 only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace loopspy {

/// The x86-64 name of syscall `nr` ("clock_nanosleep"), or empty if it is not in the table.
std::string_view x86_64_syscall_name(std::int32_t nr);

/// Why an off-CPU interval was off-CPU, in a word: the syscall's name; "syscall_N" for a number
/// not in the table; without a syscall (kNoSyscall), "preempted" if the scheduler took the CPU
/// (kOffPreempted in off_flags), else "page fault/other".
std::string off_cpu_reason(std::int32_t syscall, std::uint32_t off_flags);

/// What the text says of an interval spent waiting to take the GIL.
inline constexpr std::string_view kGilWaitWords = "waiting for the GIL";

/// The flame graph leaf of an off-CPU interval: "<GIL wait>" for a thread asleep waiting to take
/// its interpreter's GIL (kOffGil), else "<off-CPU: REASON>".
std::string off_cpu_leaf(std::int32_t syscall, std::uint32_t off_flags);

}  // namespace loopspy
