#include "reports/output_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/unique_fd.hpp"

namespace loopspy {

Result<void> write_file_atomically(const std::string& path, std::string_view contents) {
    std::string tmp = path + ".tmp" + std::to_string(::getpid());
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return make_error(ErrorKind::Io, "cannot write " + path + ": " + std::strerror(errno));
    if (int err = write_fully(fd.get(), contents)) {
        fd.reset();
        ::unlink(tmp.c_str());
        return make_error(ErrorKind::Io, "cannot write " + path + ": " + std::strerror(err));
    }
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return make_error(ErrorKind::Io, "cannot write " + path + ": " + std::strerror(err));
    }
    return {};
}

}  // namespace loopspy
