#include "core/output_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/unique_fd.hpp"

namespace loopspy {

namespace {

std::string folder_of(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

Error symlink_refused(const std::string& path) {
    return make_error(ErrorKind::BadInput, path + " is a symbolic link: loopspy does not write through one "
                                                  "(a link planted in a shared folder could point anywhere); "
                                                  "give --force to write where it points");
}

/// A new file beside `path`, with a name nobody can guess (mkstemp: O_EXCL, mode 0600 until
/// it is made 0644 like any output).
Result<std::pair<UniqueFd, std::string>> make_temporary(const std::string& path) {
    std::string name = folder_of(path) + "/." + base_of(path) + ".XXXXXX";
    std::vector<char> buf(name.begin(), name.end());
    buf.push_back('\0');
    UniqueFd fd(::mkostemp(buf.data(), O_CLOEXEC));
    if (!fd.valid()) return make_error(ErrorKind::Io, "cannot write " + path + ": " + std::strerror(errno));
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fd.get(), 0666 & ~mask);
    return std::make_pair(std::move(fd), std::string(buf.data()));
}

/// `contents` written into what `path` opens to, with `flags` besides O_WRONLY.
Result<void> write_in_place(const std::string& path, std::string_view contents, int flags) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | flags, 0644));
    if (!fd.valid()) return make_error(ErrorKind::Io, "cannot write " + path + ": " + std::strerror(errno));
    if (int err = write_fully(fd.get(), contents)) {
        return make_error(ErrorKind::Io, "cannot write " + path + ": " + std::strerror(err));
    }
    return {};
}

}  // namespace

Result<void> check_output_path(const std::string& path, bool force) {
    if (path == kStdoutPath) return {};
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (S_ISLNK(st.st_mode)) {
            if (!force) return symlink_refused(path);
            if (::stat(path.c_str(), &st) != 0) return {};  // a link to a file still to be made
        }
        if (S_ISDIR(st.st_mode)) return make_error(ErrorKind::BadInput, "cannot write " + path + ": it is a directory");
        if (!S_ISREG(st.st_mode)) return {};  // a device or FIFO is written in place
    }
    const std::string folder = folder_of(path);
    struct stat fst {};
    if (::stat(folder.c_str(), &fst) != 0) {
        return make_error(ErrorKind::BadInput, "cannot write " + path + ": folder " + folder + ": " + std::strerror(errno));
    }
    if (!S_ISDIR(fst.st_mode)) return make_error(ErrorKind::Io, "cannot write " + path + ": " + folder + " is not a folder");
    // Whether the folder takes a new file, as the write will make one (a read-only mount, a
    // folder without write permission).
    auto probe = make_temporary(path);
    if (!probe) return probe.error();
    ::unlink(probe->second.c_str());
    return {};
}

Result<void> write_file_atomically(const std::string& path, std::string_view contents, bool force) {
    if (path == kStdoutPath) {
        std::fflush(stdout);
        if (int err = write_fully(STDOUT_FILENO, contents)) {
            return make_error(ErrorKind::Io, std::string("cannot write to stdout: ") + std::strerror(err));
        }
        return {};
    }
    struct stat st {};
    const bool exists = ::lstat(path.c_str(), &st) == 0;
    if (exists && S_ISLNK(st.st_mode)) {
        if (!force) return symlink_refused(path);
        // Asked for: written where the link points, in place.
        return write_in_place(path, contents, O_CREAT | O_TRUNC);
    }
    if (exists && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {  // /dev/null, a FIFO: written in place
        return write_in_place(path, contents, O_NOFOLLOW);
    }
    LOOPSPY_TRY(auto temporary, make_temporary(path));
    auto& [fd, tmp] = temporary;
    if (int err = write_fully(fd.get(), contents)) {
        fd.reset();
        ::unlink(tmp.c_str());
        return make_error(ErrorKind::Io, "cannot write " + path + ": " + std::strerror(err));
    }
    fd.reset();
    // rename replaces whatever is at `path` (a link planted since is replaced, not followed).
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return make_error(ErrorKind::Io, "cannot write " + path + ": " + std::strerror(err));
    }
    return {};
}

Result<UniqueFd> open_growing_file(const std::string& path, bool force) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (S_ISLNK(st.st_mode) && !force) return symlink_refused(path);
        if (S_ISLNK(st.st_mode) && ::stat(path.c_str(), &st) != 0) st.st_mode = S_IFREG;  // a link to a file to make
        if (!S_ISREG(st.st_mode)) {
            return make_error(ErrorKind::BadInput, "cannot write the recording to " + path +
                                                       ": a recording is a regular file (the outputs are read back from it)");
        }
    }
    // O_NOFOLLOW: a link planted between the look above and this open is refused too.
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (force ? 0 : O_NOFOLLOW), 0644));
    if (!fd.valid()) {
        if (errno == ELOOP && !force) return symlink_refused(path);
        return make_error(ErrorKind::Io, "cannot create recording " + path + ": " + std::strerror(errno));
    }
    return fd;
}

}  // namespace loopspy
