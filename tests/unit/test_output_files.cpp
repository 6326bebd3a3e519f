// Output files on a shared host: a planted symbolic link is never followed, temporaries have
// names nobody can guess, a missing folder is said before anything is recorded, /dev/null and
// stdout take outputs.
#include <doctest/doctest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/output_files.hpp"

using namespace loopspy;
namespace fs = std::filesystem;

namespace {

struct Folder {
    fs::path path = fs::temp_directory_path() / ("loopspy-out-" + std::to_string(::getpid()));
    Folder() { fs::create_directories(path); }
    ~Folder() { fs::remove_all(path); }
    std::string operator/(const std::string& name) const { return (path / name).string(); }
    std::size_t entries() const { return static_cast<std::size_t>(std::distance(fs::directory_iterator(path), {})); }
};

std::string read(const std::string& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

TEST_CASE("output files: a symbolic link at the output's path is refused, the file it points at untouched") {
    Folder d;
    { std::ofstream(d / "victim") << "secret"; }
    fs::create_symlink(d / "victim", d / "out.svg");
    auto checked = check_output_path(d / "out.svg", false);
    REQUIRE_FALSE(checked.ok());
    CHECK(checked.error().kind == ErrorKind::BadInput);
    CHECK(checked.error().message.find("is a symbolic link") != std::string::npos);
    CHECK_FALSE(write_file_atomically(d / "out.svg", "graph").ok());
    CHECK(read(d / "victim") == "secret");
    auto grown = open_growing_file(d / "out.svg", false);
    REQUIRE_FALSE(grown.ok());
    CHECK(read(d / "victim") == "secret");
    // Asked for with --force, it is written where the link points.
    CHECK(check_output_path(d / "out.svg", true).ok());
    CHECK(write_file_atomically(d / "out.svg", "graph", true).ok());
    CHECK(read(d / "victim") == "graph");
}

TEST_CASE("output files: written whole through a temporary nobody can guess, left nowhere") {
    Folder d;
    { std::ofstream(d / "report.json") << "old"; }
    CHECK(write_file_atomically(d / "report.json", "{\"new\": 1}").ok());
    CHECK(read(d / "report.json") == "{\"new\": 1}");
    CHECK(d.entries() == 1);  // no temporary left
    // The old predictable name is not used: a file planted there stays as it was.
    { std::ofstream(d / ("report.json.tmp" + std::to_string(::getpid()))) << "planted"; }
    CHECK(write_file_atomically(d / "report.json", "again").ok());
    CHECK(read(d / ("report.json.tmp" + std::to_string(::getpid()))) == "planted");
    struct stat st {};
    REQUIRE(::stat((d / "report.json").c_str(), &st) == 0);
    const mode_t mask = ::umask(0);
    ::umask(mask);
    CHECK((st.st_mode & 0777) == (0666 & ~mask));
}

TEST_CASE("output files: a missing folder, a directory, a read-only folder are said before anything is written") {
    Folder d;
    auto missing = check_output_path(d / "no/such/x.svg", false);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().kind == ErrorKind::BadInput);
    CHECK(missing.error().message.find("folder " + (d / "no/such") + ": No such file or directory") != std::string::npos);
    auto dir = check_output_path(d.path.string(), false);
    REQUIRE_FALSE(dir.ok());
    CHECK(dir.error().message.find("it is a directory") != std::string::npos);
    CHECK(check_output_path(d / "fine.svg", false).ok());
    CHECK(d.entries() == 0);  // the check leaves nothing behind
    if (::geteuid() != 0) {   // root writes anywhere; a read-only mount is tested by the integration tests
        fs::create_directories(d.path / "ro");
        fs::permissions(d.path / "ro", fs::perms::owner_read | fs::perms::owner_exec);
        CHECK_FALSE(check_output_path(d / "ro/x.svg", false).ok());
    }
}

TEST_CASE("output files: /dev/null takes any output in place, and a recording only goes to a regular file") {
    CHECK(check_output_path("/dev/null", false).ok());
    CHECK(write_file_atomically("/dev/null", "nothing").ok());
    struct stat st {};
    REQUIRE(::stat("/dev/null", &st) == 0);
    CHECK(S_ISCHR(st.st_mode));  // still the device, not replaced by a file
    CHECK_FALSE(open_growing_file("/dev/null", false).ok());
    CHECK(check_output_path("-", false).ok());
}
