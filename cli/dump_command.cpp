#include "cli/dump_command.hpp"

#include <cstdio>

#include "reports/json_report.hpp"
#include "reports/text_tables.hpp"
#include "session/dump_snapshot.hpp"
#include "symbolizer/process/proc_maps.hpp"

namespace loopspy {

Result<int> run_dump(const DumpArgs& args) {
    if (args.pid <= 0) return make_error(ErrorKind::BadInput, "give the process to dump with -p PID");
    DumpOptions options;
    options.nonblocking = args.nonblocking;
    LOOPSPY_TRY(ProcessDump dump, take_dump_snapshot(Pid{args.pid}, options));
    if (!args.subprocesses) {
        const std::string text = args.json ? render_dump_json(dump) : render_dump_text(dump);
        std::fputs(text.c_str(), stdout);
        return 0;
    }
    // -s: the target, then every descendant that runs Python; the others are named on stderr.
    std::vector<ProcessDump> dumps;
    dumps.push_back(std::move(dump));
    std::string skipped;
    for (Pid child : descendants(dumps.front().pid)) {
        auto d = take_dump_snapshot(child, options);
        if (d) {
            dumps.push_back(std::move(d).value());
        } else if (d.error().kind != ErrorKind::NoSuchProcess) {  // one that just ended is not news
            skipped += "\nloopspy:   " + std::to_string(child.value) + ": " + d.error().message;
        }
    }
    if (!skipped.empty()) std::fprintf(stderr, "loopspy: descendants not dumped:%s\n", skipped.c_str());
    if (args.json) {
        std::fputs(render_dumps_json(dumps).c_str(), stdout);
    } else {
        for (std::size_t i = 0; i < dumps.size(); ++i) {
            if (i) std::fputs("\n", stdout);
            std::fputs(render_dump_text(dumps[i]).c_str(), stdout);
        }
    }
    return 0;
}

}  // namespace loopspy
