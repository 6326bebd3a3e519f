#include "symbolizer/process/proc_maps.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/capabilities.hpp"
#include <unordered_map>
#include <unordered_set>

namespace loopspy {
namespace {

std::string slurp(const std::string& path, bool* ok = nullptr) {
    std::ifstream in(path, std::ios::binary);
    if (ok) *ok = static_cast<bool>(in);
    if (!in) return {};
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool parse_hex(std::string_view s, std::uint64_t& out) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), out, 16);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

std::string_view next_field(std::string_view& line) {
    std::size_t b = line.find_first_not_of(' ');
    if (b == std::string_view::npos) {
        line = {};
        return {};
    }
    line.remove_prefix(b);
    std::size_t e = line.find(' ');
    std::string_view field = line.substr(0, e);
    line.remove_prefix(e == std::string_view::npos ? line.size() : e);
    return field;
}

/// The value of a "Key:\tvalue" line of a /proc status file, or empty.
std::string_view status_field(std::string_view status, std::string_view key) {
    std::size_t at = status.rfind(std::string(key) + ":", 0) == 0 ? 0 : status.find("\n" + std::string(key) + ":");
    if (at == std::string_view::npos) return {};
    if (at != 0) ++at;
    std::size_t b = status.find_first_not_of(" \t", at + key.size() + 1);
    if (b == std::string_view::npos) return {};
    std::size_t e = status.find('\n', b);
    return status.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b);
}

/// The ids of an NSpid line, outermost namespace (the one /proc shows) first.
std::vector<int> nspid_ids(std::string_view status) {
    std::vector<int> ids;
    std::string_view line = status_field(status, "NSpid");
    while (!line.empty()) {
        std::size_t b = line.find_first_not_of(" \t");
        if (b == std::string_view::npos) break;
        line.remove_prefix(b);
        int v = 0;
        auto r = std::from_chars(line.data(), line.data() + line.size(), v);
        if (r.ec != std::errc()) break;
        ids.push_back(v);
        line.remove_prefix(static_cast<std::size_t>(r.ptr - line.data()));
    }
    return ids;
}

}  // namespace

std::vector<Mapping> parse_proc_maps(std::string_view text) {
    std::vector<Mapping> maps;
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);

        std::string_view range = next_field(line);
        std::string_view perms = next_field(line);
        std::string_view offset = next_field(line);
        next_field(line);  // dev
        std::string_view inode = next_field(line);
        std::size_t dash = range.find('-');
        Mapping m;
        if (dash == std::string_view::npos || !parse_hex(range.substr(0, dash), m.start) ||
            !parse_hex(range.substr(dash + 1), m.end) || !parse_hex(offset, m.offset)) {
            continue;
        }
        std::from_chars(inode.data(), inode.data() + inode.size(), m.inode);
        m.perms = std::string(perms);
        std::size_t b = line.find_first_not_of(' ');
        if (b != std::string_view::npos) m.path = std::string(line.substr(b));
        maps.push_back(std::move(m));
    }
    return maps;
}

Result<std::vector<Mapping>> read_proc_maps(Pid pid) {
    bool ok = false;
    std::string text = slurp("/proc/" + std::to_string(pid.value) + "/maps", &ok);
    if (!ok) {
        if (!process_exists(pid)) {
            return make_error(ErrorKind::NoSuchProcess, "no process with pid " + std::to_string(pid.value));
        }
        return access_denied(pid, "/proc/" + std::to_string(pid.value) + "/maps");
    }
    return parse_proc_maps(text);
}

Error access_denied(Pid pid, const std::string& what) {
    if (!have_capability(kCapSysPtrace).value_or(false)) {
        return make_error(ErrorKind::NoPrivilege, "cannot read " + what + ": permission denied (need root or CAP_SYS_PTRACE)");
    }
    // Root with CAP_SYS_PTRACE is refused too when the process is not dumpable and lives in a user
    // namespace loopspy has no capability in, or when a security module forbids it.
    return make_error(ErrorKind::NoPrivilege,
                      "cannot read " + what + ": the kernel refuses access to process " + std::to_string(pid.value) +
                          " although loopspy has CAP_SYS_PTRACE (a process that made itself non-dumpable, or a "
                          "security module's policy); pid 1 of a machine or VM is often such a process");
}

bool process_exists(Pid pid) {
    if (pid.value <= 0) return false;
    struct stat st {};
    return ::stat(("/proc/" + std::to_string(pid.value)).c_str(), &st) == 0;
}

std::optional<ProcessStat> read_process_stat(Pid pid) {
    if (pid.value <= 0) return std::nullopt;
    bool ok = false;
    const std::string stat = slurp("/proc/" + std::to_string(pid.value) + "/stat", &ok);
    // "pid (comm) state ppid ...": comm may hold anything, so fields count from its last ')'.
    const std::size_t close = stat.rfind(')');
    if (!ok || close == std::string::npos || close + 2 >= stat.size()) return std::nullopt;
    ProcessStat st;
    st.state = stat[close + 2];
    std::string_view rest = std::string_view(stat).substr(close + 2);
    // Field 4 (ppid), fields 14 and 15 (utime, stime), counting from state as field 3; 28
    // (startstack) and 48 to 51 (arg_start, arg_end, env_start, env_end) for the image.
    std::uint64_t ticks[2] = {0, 0};
    for (int field = 3; field <= 51 && !rest.empty(); ++field) {
        std::size_t sp = rest.find(' ');
        std::string_view value = rest.substr(0, sp);
        if (field == 4) std::from_chars(value.data(), value.data() + value.size(), st.parent.value);
        if (field == 14 || field == 15) std::from_chars(value.data(), value.data() + value.size(), ticks[field - 14]);
        if (field == 28 || field >= 48) {
            std::uint64_t v = 0;
            std::from_chars(value.data(), value.data() + value.size(), v);
            st.image = (st.image ^ v) * 0x100000001b3ULL;
        }
        rest.remove_prefix(sp == std::string_view::npos ? rest.size() : sp + 1);
    }
    static const long hz = ::sysconf(_SC_CLK_TCK);
    st.cpu = Nanoseconds{static_cast<std::int64_t>((ticks[0] + ticks[1]) * (1'000'000'000 / (hz > 0 ? hz : 100)))};
    return st;
}

bool process_running(Pid pid) {
    auto st = read_process_stat(pid);
    return st && st->running();
}

bool thread_exists(Pid pid, Tid tid) {
    struct stat st {};
    const std::string path = "/proc/" + std::to_string(pid.value) + "/task/" + std::to_string(tid.value);
    return ::stat(path.c_str(), &st) == 0;
}

Result<TargetProcess> target_process(Pid pid) {
    const std::string id = std::to_string(pid.value);
    bool ok = false;
    const std::string status = pid.value > 0 ? slurp("/proc/" + id + "/status", &ok) : std::string();
    if (!ok) return make_error(ErrorKind::NoSuchProcess, "no process with pid " + id);
    auto field = [&](std::string_view key) { return status_field(status, key); };
    const std::string_view state = field("State");
    if (!state.empty() && (state[0] == 'Z' || state[0] == 'X')) {
        return make_error(ErrorKind::NoSuchProcess, "process " + id + " has exited (a zombie its parent has not reaped)");
    }
    TargetProcess t{pid, false};
    const std::string_view tgid = field("Tgid");
    int value = 0;
    if (std::from_chars(tgid.data(), tgid.data() + tgid.size(), value).ec == std::errc() && value > 0 &&
        value != pid.value) {
        t.pid = Pid{value};
        t.was_thread = true;
    }
    return t;
}

std::vector<Tid> list_threads(Pid pid) {
    std::vector<Tid> tids;
    std::string dir = "/proc/" + std::to_string(pid.value) + "/task";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return tids;
    while (dirent* e = ::readdir(d)) {
        int tid = 0;
        std::string_view name(e->d_name);
        auto r = std::from_chars(name.data(), name.data() + name.size(), tid);
        if (r.ec == std::errc() && r.ptr == name.data() + name.size() && tid > 0) tids.push_back(Tid{tid});
    }
    ::closedir(d);
    std::sort(tids.begin(), tids.end());
    return tids;
}

std::unordered_map<Tid, Tid> own_thread_ids(Pid pid) {
    std::unordered_map<Tid, Tid> ids;
    const std::string dir = "/proc/" + std::to_string(pid.value);
    if (nspid_ids(slurp(dir + "/status")).size() < 2) return ids;  // the same namespace: no mapping
    for (Tid tid : list_threads(pid)) {
        std::vector<int> ns = nspid_ids(slurp(dir + "/task/" + std::to_string(tid.value) + "/status"));
        if (ns.size() >= 2 && ns.front() == tid.value) ids.emplace(Tid{ns.back()}, tid);
    }
    return ids;
}

std::vector<Pid> descendants(Pid pid) {
    std::vector<Pid> out;
    std::vector<Pid> todo{pid};
    std::unordered_set<int> seen{pid.value};
    while (!todo.empty() && out.size() < 65536) {
        const Pid p = todo.back();
        todo.pop_back();
        for (Tid tid : list_threads(p)) {
            const std::string children =
                slurp("/proc/" + std::to_string(p.value) + "/task/" + std::to_string(tid.value) + "/children");
            std::string_view rest(children);
            while (!rest.empty()) {
                int child = 0;
                auto r = std::from_chars(rest.data(), rest.data() + rest.size(), child);
                if (r.ec != std::errc()) {
                    rest.remove_prefix(1);
                    continue;
                }
                rest.remove_prefix(static_cast<std::size_t>(r.ptr - rest.data()));
                if (child > 0 && seen.insert(child).second) {
                    out.push_back(Pid{child});
                    todo.push_back(Pid{child});
                }
            }
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string thread_name(Pid pid, Tid tid) {
    std::string name =
        slurp("/proc/" + std::to_string(pid.value) + "/task/" + std::to_string(tid.value) + "/comm");
    while (!name.empty() && (name.back() == '\n' || name.back() == '\0')) name.pop_back();
    return name;
}

std::string process_cmdline(Pid pid) {
    std::string raw = slurp("/proc/" + std::to_string(pid.value) + "/cmdline");
    while (!raw.empty() && raw.back() == '\0') raw.pop_back();
    std::replace(raw.begin(), raw.end(), '\0', ' ');
    return raw;
}

std::string mapping_file_path(Pid pid, const Mapping& m) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "/proc/%d/map_files/%llx-%llx", pid.value,
                  static_cast<unsigned long long>(m.start), static_cast<unsigned long long>(m.end));
    if (::access(buf, R_OK) == 0) return buf;
    return "/proc/" + std::to_string(pid.value) + "/root" + m.path;
}

}  // namespace loopspy
