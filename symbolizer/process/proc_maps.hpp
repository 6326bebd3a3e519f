// /proc/PID/maps and friends: what a process has mapped, its threads, their names.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.hpp"
#include "core/types.hpp"

namespace loopspy {

struct Mapping {
    std::uint64_t start = 0;
    std::uint64_t end = 0;
    std::uint64_t offset = 0;  // file offset of `start`
    std::string perms;         // "r-xp"
    std::uint64_t inode = 0;
    std::string path;          // empty for anonymous mappings
};

/// Parses the text of a /proc/PID/maps file (exposed for tests).
std::vector<Mapping> parse_proc_maps(std::string_view text);

/// Reads /proc/PID/maps. NoSuchProcess if the process is gone.
Result<std::vector<Mapping>> read_proc_maps(Pid pid);

bool process_exists(Pid pid);

/// What /proc/PID/stat says of a process.
struct ProcessStat {
    char state = '?';   // R, S, D, T, Z (exited, not yet reaped), ...
    Pid parent;         // its parent process
    Nanoseconds cpu{};  // user + system CPU time of all its threads, living and ended
    /// Where its program's stack, arguments and environment lie: an exec builds new ones (at new
    /// random addresses, and for a new command line), so a changed value means a new program.
    std::uint64_t image = 0;
    /// Not exited (a zombie has: its memory and threads are gone).
    bool running() const { return state != 'Z' && state != 'X'; }
};
std::optional<ProcessStat> read_process_stat(Pid pid);
/// Whether the process exists and has not exited (a zombie has: its memory and threads are gone).
bool process_running(Pid pid);
/// Whether thread `tid` of process `pid` still exists (is listed under /proc/PID/task).
bool thread_exists(Pid pid, Tid tid);

/// The error for a read of `what` (a /proc file, the process's memory) the kernel refused: it
/// says whether loopspy lacks the privilege or has it and is refused all the same.
Error access_denied(Pid pid, const std::string& what);

/// What a user's -p PID names: the process itself, or the process a thread id belongs to.
struct TargetProcess {
    Pid pid;                // the process (thread group) to profile
    bool was_thread = false;  // the given id was one of its threads, not the process
};
/// NoSuchProcess when the id names nothing, or a process that has exited and is waiting to be
/// reaped (a zombie: its memory is gone).
Result<TargetProcess> target_process(Pid pid);
/// The tids of the process's threads (from /proc/PID/task).
std::vector<Tid> list_threads(Pid pid);
/// The process's thread ids as its own threads see them (what CPython stores as native_thread_id),
/// mapped to the ids loopspy sees (/proc's, the kernel side's): they differ when the process runs
/// in a PID namespace below loopspy's (a container). Empty when the two are the same.
std::unordered_map<Tid, Tid> own_thread_ids(Pid pid);
/// Every descendant of the process (children, their children, ...), by pid, from
/// /proc/PID/task/TID/children.
std::vector<Pid> descendants(Pid pid);
/// The thread's name (/proc/PID/task/TID/comm), or an empty string.
std::string thread_name(Pid pid, Tid tid);
/// The process's command line with arguments joined by spaces.
std::string process_cmdline(Pid pid);

/// A path that opens the file behind a mapping even across mount namespaces or when deleted:
/// /proc/PID/map_files/START-END when it exists, else /proc/PID/root/PATH.
std::string mapping_file_path(Pid pid, const Mapping& m);

}  // namespace loopspy
