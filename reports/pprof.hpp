// pprof's profile.proto, gzipped: what `go tool pprof`, Pyroscope, Parca, Grafana and Datadog
// ingest. Two sample types, both nanoseconds: "cpu" (on-CPU samples) and "wall" (on-CPU plus
// off-CPU intervals, and for loop threads their idle waits). Functions carry name and file
// (start_line 0: the recording keeps each frame's current line, not where its function begins),
// locations their line. Off-CPU and idle time end in the flame graph's "<off-CPU: REASON>" and
// "<idle>" frames. Labels: "thread" (name), "thread_id", "pid", "task" (the asyncio task, when
// known) and, for a loop thread, "loop": running, blocking or idle.
#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"
#include "recording/profile.hpp"
#include "reports/loop_analysis.hpp"
#include "reports/task_attribution.hpp"

namespace loopspy {

/// The uncompressed protobuf bytes.
std::string encode_pprof(const Profile& profile, const std::vector<Tid>& loop_threads, const AnalysisFilter& filter,
                         const TaskAttribution* tasks);
/// gzip, as pprof files are stored.
Result<std::string> gzip(std::string_view bytes);

}  // namespace loopspy
