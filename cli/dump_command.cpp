#include "cli/dump_command.hpp"

#include <cstdio>

#include "reports/json_report.hpp"
#include "reports/text_tables.hpp"
#include "session/dump_snapshot.hpp"

namespace loopspy {

Result<int> run_dump(const DumpArgs& args) {
    if (args.pid <= 0) return make_error(ErrorKind::BadInput, "give the process to dump with -p PID");
    DumpOptions options;
    options.nonblocking = args.nonblocking;
    LOOPSPY_TRY(ProcessDump dump, take_dump_snapshot(Pid{args.pid}, options));
    const std::string text = args.json ? render_dump_json(dump) : render_dump_text(dump);
    std::fputs(text.c_str(), stdout);
    return 0;
}

}  // namespace loopspy
