#include "symbolizer/process/process_pause.hpp"

#include <sys/ptrace.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "symbolizer/process/proc_maps.hpp"

namespace loopspy {

Result<ProcessPause> ProcessPause::pause(Pid pid) {
    ProcessPause p;
    // Threads may start while we seize: go round until a pass finds none new.
    std::set<std::int32_t> seized;
    for (int round = 0; round < 8; ++round) {
        bool fresh = false;
        for (Tid tid : list_threads(pid)) {
            if (seized.count(tid.value)) continue;
            if (::ptrace(PTRACE_SEIZE, tid.value, nullptr, nullptr) != 0) {
                int err = errno;
                if (err == ESRCH) continue;  // the thread just exited
                if (err == EPERM) {
                    return make_error(ErrorKind::NoPrivilege, "cannot pause pid " + std::to_string(pid.value) +
                                                                  " to read it (ptrace: " + std::strerror(err) +
                                                                  "); is it traced by a debugger? --nonblocking reads it running");
                }
                return make_error(ErrorKind::Remote, "cannot pause pid " + std::to_string(pid.value) + ": " + std::strerror(err));
            }
            seized.insert(tid.value);
            p.tids_.push_back(tid);
            fresh = true;
            if (::ptrace(PTRACE_INTERRUPT, tid.value, nullptr, nullptr) == 0) {
                int status = 0;
                ::waitpid(tid.value, &status, __WALL);
            }
        }
        if (!fresh) break;
    }
    if (p.tids_.empty()) return make_error(ErrorKind::NoSuchProcess, "no process with pid " + std::to_string(pid.value));
    return p;
}

ProcessPause::~ProcessPause() {
    for (Tid tid : tids_) ::ptrace(PTRACE_DETACH, tid.value, nullptr, nullptr);
}

}  // namespace loopspy
