// Launching the command to profile (`loopspy record -- python app.py`).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/types.hpp"

namespace loopspy {

class Child {
public:
    /// Forks and execs `argv` (searching PATH). Returns once the exec succeeded; an exec failure
    /// ("no such file") is an error.
    static Result<Child> spawn(const std::vector<std::string>& argv);

    Child(Child&&) noexcept;
    Child& operator=(Child&&) = delete;
    Child(const Child&) = delete;
    ~Child();  // a child still running when its owner goes is terminated and reaped

    Pid pid() const { return pid_; }
    /// Non-blocking: true once the child has exited (and was reaped).
    bool exited();
    /// Sends SIGTERM, waits up to `grace_ms`, then SIGKILL; reaps it.
    void terminate(int grace_ms);
    /// The exit status as a shell reports it: the code, or 128+signal.
    std::optional<int> exit_status() const { return status_; }
    /// "exited with status 0" / "was killed by signal 9 (Killed)".
    std::string describe_exit() const;
    /// Once reaped: its whole CPU time, to the microsecond (wait4's rusage).
    std::optional<Nanoseconds> cpu() const { return cpu_; }
    /// Holds the child still (SIGSTOP) until resume(): from its interpreter's discovery to the
    /// first sample nothing it does goes unrecorded (loading and attaching the probes takes from
    /// 0.1 s to most of a second on a busy machine). Resumed at the latest when the Child goes.
    void pause();
    void resume();

private:
    explicit Child(Pid pid) : pid_(pid) {}
    Pid pid_;
    std::optional<int> status_;
    int raw_status_ = 0;
    bool reaped_ = false;
    bool paused_ = false;
    std::optional<Nanoseconds> cpu_;
};

}  // namespace loopspy
