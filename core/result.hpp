// Errors carried as values. A function that can fail returns Result<T>; the error travels up
// to the one place in cli/ that prints it as a single line and picks the exit code.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace loopspy {

enum class ErrorKind {
    NoSuchProcess,      // the pid does not exist (or exited)
    NotPython,          // no mapped ELF exports _PyRuntime
    UnsupportedPython,  // a Python we cannot read
    NoPrivilege,        // missing CAP_BPF / CAP_PERFMON / CAP_SYS_PTRACE
    NoBtf,              // kernel without /sys/kernel/btf/vmlinux
    BadInput,           // a malformed file or argument
    Io,                 // a read or write failed
    Bpf,                // loading or attaching BPF failed
    Remote,             // reading the target's memory failed
    Internal,
};

struct Error {
    ErrorKind kind{ErrorKind::Internal};
    std::string message;
};

inline Error make_error(ErrorKind kind, std::string message) { return Error{kind, std::move(message)}; }

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : err_(std::move(error)), ok_(false) {}
    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const { return err_; }

private:
    Error err_{};
    bool ok_{true};
};

// Propagate an error: LOOPSPY_TRY(auto x, f()); binds x to the value or returns the error.
#define LOOPSPY_CONCAT_(a, b) a##b
#define LOOPSPY_CONCAT(a, b) LOOPSPY_CONCAT_(a, b)
#define LOOPSPY_TRY_IMPL(tmp, decl, expr) \
    auto tmp = (expr);                    \
    if (!tmp.ok()) return tmp.error();    \
    decl = std::move(tmp).value()
#define LOOPSPY_TRY(decl, expr) LOOPSPY_TRY_IMPL(LOOPSPY_CONCAT(try_tmp_, __LINE__), decl, expr)
#define LOOPSPY_CHECK(expr)                          \
    do {                                             \
        auto check_tmp_ = (expr);                    \
        if (!check_tmp_.ok()) return check_tmp_.error(); \
    } while (0)

}  // namespace loopspy
