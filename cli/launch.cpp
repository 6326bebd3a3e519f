#include "cli/launch.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace loopspy {

Result<Child> Child::spawn(const std::vector<std::string>& argv) {
    if (argv.empty()) return make_error(ErrorKind::BadInput, "no command to run");
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return make_error(ErrorKind::Io, std::string("pipe: ") + std::strerror(errno));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(pipefd[0]);
        ::close(pipefd[1]);
        return make_error(ErrorKind::Io, std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        ::close(pipefd[0]);
        // The child must not inherit loopspy's blocked or ignored signals.
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::signal(SIGINT, SIG_DFL);
        ::signal(SIGTERM, SIG_DFL);
        ::execvp(args[0], args.data());
        int err = errno;
        ssize_t ignored = ::write(pipefd[1], &err, sizeof(err));
        (void)ignored;
        ::_exit(127);
    }
    ::close(pipefd[1]);
    int err = 0;
    ssize_t n;
    do {
        n = ::read(pipefd[0], &err, sizeof(err));
    } while (n < 0 && errno == EINTR);
    ::close(pipefd[0]);
    Child child(Pid{pid});
    if (n == sizeof(err)) {
        child.exited();
        while (!child.exited()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return make_error(ErrorKind::BadInput, "cannot run '" + argv[0] + "': " + std::strerror(err));
    }
    return child;
}

Child::Child(Child&& o) noexcept
    : pid_(o.pid_), status_(o.status_), raw_status_(o.raw_status_), reaped_(o.reaped_), paused_(o.paused_), cpu_(o.cpu_) {
    o.reaped_ = true;
    o.paused_ = false;
}

Child::~Child() {
    if (!reaped_) terminate(1000);
}

void Child::pause() {
    if (reaped_ || paused_) return;
    paused_ = ::kill(pid_.value, SIGSTOP) == 0;
}

void Child::resume() {
    if (!paused_) return;
    ::kill(pid_.value, SIGCONT);
    paused_ = false;
}

bool Child::exited() {
    if (reaped_) return true;
    int status = 0;
    rusage usage{};
    pid_t r = ::wait4(pid_.value, &status, WNOHANG, &usage);
    if (r == pid_.value) {
        reaped_ = true;
        raw_status_ = status;
        const auto ns = [](const timeval& t) { return std::int64_t{t.tv_sec} * 1'000'000'000 + std::int64_t{t.tv_usec} * 1000; };
        cpu_ = Nanoseconds{ns(usage.ru_utime) + ns(usage.ru_stime)};
        if (WIFEXITED(status)) status_ = WEXITSTATUS(status);
        else if (WIFSIGNALED(status)) status_ = 128 + WTERMSIG(status);
        return true;
    }
    if (r < 0 && errno == ECHILD) {
        reaped_ = true;
        return true;
    }
    return false;
}

void Child::terminate(int grace_ms) {
    if (exited()) return;
    ::kill(pid_.value, SIGTERM);
    resume();  // a stopped child acts on SIGTERM once it runs
    for (int waited = 0; waited < grace_ms; waited += 10) {
        if (exited()) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_.value, SIGKILL);
    while (!exited()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

std::string Child::describe_exit() const {
    if (!status_) return "is still running";
    if (WIFSIGNALED(raw_status_)) {
        int sig = WTERMSIG(raw_status_);
        return "was killed by signal " + std::to_string(sig) + " (" + ::strsignal(sig) + ")";
    }
    return "exited with status " + std::to_string(*status_);
}

}  // namespace loopspy
