#include "reports/pprof.hpp"

#include <zlib.h>

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>

#include "reports/flame_modes.hpp"
#include "reports/syscalls.hpp"

namespace loopspy {

namespace {

/// The protobuf wire format, as much of it as profile.proto needs: varints, and length-delimited
/// strings and messages.
class Proto {
public:
    void varint(std::uint64_t v) {
        while (v >= 0x80) {
            out_.push_back(static_cast<char>(v | 0x80));
            v >>= 7;
        }
        out_.push_back(static_cast<char>(v));
    }
    void tag(int field, int wire) { varint(static_cast<std::uint64_t>(field) << 3 | static_cast<unsigned>(wire)); }
    void uint(int field, std::uint64_t v) {
        if (v == 0) return;  // proto3: a zero is the default and not written
        tag(field, 0);
        varint(v);
    }
    void sint(int field, std::int64_t v) { uint(field, static_cast<std::uint64_t>(v)); }  // int64: two's complement
    void bytes(int field, std::string_view b) {
        tag(field, 2);
        varint(b.size());
        out_.append(b);
    }
    void message(int field, const Proto& m) { bytes(field, m.out_); }
    void packed(int field, const std::vector<std::uint64_t>& values) {
        if (values.empty()) return;
        Proto p;
        for (std::uint64_t v : values) p.varint(v);
        bytes(field, p.out_);
    }
    const std::string& str() const { return out_; }

private:
    std::string out_;
};

// profile.proto's field numbers.
namespace field {
constexpr int kSampleType = 1, kSample = 2, kMapping = 3, kLocation = 4, kFunction = 5, kStringTable = 6,
              kDurationNanos = 10, kPeriodType = 11, kPeriod = 12, kComment = 13, kDefaultSampleType = 14;
constexpr int kValueTypeType = 1, kValueTypeUnit = 2;
constexpr int kSampleLocation = 1, kSampleValue = 2, kSampleLabel = 3;
constexpr int kLabelKey = 1, kLabelStr = 2, kLabelNum = 3;
constexpr int kMappingId = 1, kMappingFilename = 5, kMappingHasFunctions = 7, kMappingHasFilenames = 8,
              kMappingHasLines = 9;
constexpr int kLocationId = 1, kLocationMapping = 2, kLocationLine = 4;
constexpr int kLineFunction = 1, kLineLine = 2;
constexpr int kFunctionId = 1, kFunctionName = 2, kFunctionFilename = 4;
}  // namespace field

class Strings {
public:
    Strings() { id(""); }
    std::uint64_t id(std::string_view s) {
        auto it = ids_.find(std::string(s));
        if (it != ids_.end()) return it->second;
        table_.emplace_back(s);
        return ids_[std::string(s)] = table_.size() - 1;
    }
    const std::vector<std::string>& table() const { return table_; }

private:
    std::vector<std::string> table_;
    std::unordered_map<std::string, std::uint64_t> ids_;
};

enum class LoopState { None, Running, Blocking, Idle };

struct SampleKey {
    Tid tid;
    StackId stack;
    std::string leaf;  // "<off-CPU: REASON>", "<idle>", or empty
    std::optional<TaskId> task;
    LoopState loop;
    auto operator<=>(const SampleKey&) const = default;
};

}  // namespace

std::string encode_pprof(const Profile& profile, const std::vector<Tid>& loop_threads, const AnalysisFilter& filter,
                         const TaskAttribution* tasks) {
    const TimeWindow window = analysis_window(profile, filter);
    auto is_loop = [&](Tid t) { return std::binary_search(loop_threads.begin(), loop_threads.end(), t); };
    // [cpu, wall] nanoseconds per distinct sample.
    std::map<SampleKey, std::pair<std::int64_t, std::int64_t>> values;
    const auto& samples = profile.samples();
    for (std::size_t i = 0; i < samples.size(); ++i) {
        const SampleRecord& s = samples[i];
        if (!thread_selected(filter, s.tid)) continue;
        SampleKey key{s.tid, s.stack, {}, tasks ? tasks->task_of(i) : std::nullopt, LoopState::None};
        std::int64_t cpu = 0, wall = 0;
        if (s.kind == SampleKind::OnCpu) {
            if (!window.contains(s.time)) continue;
            cpu = wall = s.weight.value;
            if (is_loop(s.tid)) key.loop = LoopState::Running;
        } else {
            wall = window.overlap(s.time, s.time + s.weight).value;
            if (wall <= 0) continue;
            key.leaf = off_cpu_leaf(s.syscall, s.off_flags);
            if (is_loop(s.tid)) key.loop = LoopState::Blocking;
        }
        auto& v = values[key];
        v.first += cpu;
        v.second += wall;
    }
    for (Tid tid : loop_threads) {
        if (!thread_selected(filter, tid)) continue;
        const Nanoseconds idle = loop_stats(profile, tid, window).idle;
        if (idle.value > 0) {
            values[SampleKey{tid, 0, std::string(kIdleFrame), std::nullopt, LoopState::Idle}].second += idle.value;
        }
    }

    Strings strings;
    Proto doc;
    auto value_type = [&](std::string_view type, std::string_view unit) {
        Proto vt;
        vt.uint(field::kValueTypeType, strings.id(type));
        vt.uint(field::kValueTypeUnit, strings.id(unit));
        return vt;
    };
    doc.message(field::kSampleType, value_type("cpu", "nanoseconds"));
    doc.message(field::kSampleType, value_type("wall", "nanoseconds"));

    // Functions by (name, file); locations by (function, line).
    std::map<std::pair<std::string, std::string>, std::uint64_t> functions;
    std::map<std::pair<std::uint64_t, std::int32_t>, std::uint64_t> locations;
    Proto function_table, location_table;
    auto function_id = [&](const std::string& name, const std::string& file) {
        auto [it, fresh] = functions.try_emplace({name, file}, functions.size() + 1);
        if (fresh) {
            Proto f;
            f.uint(field::kFunctionId, it->second);
            f.uint(field::kFunctionName, strings.id(name));
            // No system name: pprof takes a function whose name equals its system name for a C++
            // symbol to tidy, and strips "<...>" and "(...)" from it (<module>, <off-CPU: ...>).
            f.uint(field::kFunctionFilename, strings.id(file));
            function_table.message(field::kFunction, f);
        }
        return it->second;
    };
    auto location_id = [&](std::uint64_t function, std::int32_t line) {
        auto [it, fresh] = locations.try_emplace({function, line}, locations.size() + 1);
        if (fresh) {
            Proto l;
            l.uint(field::kLocationId, it->second);
            l.uint(field::kLocationMapping, 1);
            Proto ln;
            ln.uint(field::kLineFunction, function);
            ln.sint(field::kLineLine, std::max(line, 0));
            l.message(field::kLocationLine, ln);
            location_table.message(field::kLocation, l);
        }
        return it->second;
    };
    std::unordered_map<FrameId, std::uint64_t> frame_locations;
    auto frame_location = [&](FrameId id) {
        auto [it, fresh] = frame_locations.try_emplace(id, 0);
        if (fresh) {
            const FrameRecord& f = profile.frame(id);
            const bool special = f.flags & kFrameSpecial;
            it->second = location_id(function_id(std::string(profile.string(f.name)),
                                                 special ? std::string() : std::string(profile.string(f.file))),
                                     special ? 0 : f.line);
        }
        return it->second;
    };
    auto label = [&](Proto& sample, std::string_view key, std::optional<std::string_view> str, std::int64_t num) {
        Proto l;
        l.uint(field::kLabelKey, strings.id(key));
        if (str) l.uint(field::kLabelStr, strings.id(*str));
        else l.sint(field::kLabelNum, num);
        sample.message(field::kSampleLabel, l);
    };
    std::vector<std::uint64_t> locs;
    for (const auto& [key, v] : values) {
        locs.clear();
        if (!key.leaf.empty()) locs.push_back(location_id(function_id(key.leaf, ""), 0));
        auto frames = profile.stack(key.stack);
        if (key.loop != LoopState::Idle) {
            for (auto f = frames.rbegin(); f != frames.rend(); ++f) locs.push_back(frame_location(*f));
        }
        Proto sample;
        sample.packed(field::kSampleLocation, locs);
        sample.packed(field::kSampleValue, {static_cast<std::uint64_t>(v.first), static_cast<std::uint64_t>(v.second)});
        const std::string thread = profile.thread_name(key.tid);
        label(sample, "thread", thread.empty() ? std::string("?") : thread, 0);
        label(sample, "thread_id", std::nullopt, key.tid.value);
        label(sample, "pid", std::nullopt, profile.process_of(key.tid).value);
        if (key.task && tasks) label(sample, "task", tasks->name(*key.task), 0);
        if (key.loop != LoopState::None) {
            label(sample, "loop", key.loop == LoopState::Running ? "running" : key.loop == LoopState::Blocking ? "blocking" : "idle", 0);
        }
        doc.message(field::kSample, sample);
    }
    Proto mapping;
    mapping.uint(field::kMappingId, 1);
    mapping.uint(field::kMappingFilename, strings.id(profile.info.python_binary));
    mapping.uint(field::kMappingHasFunctions, 1);
    mapping.uint(field::kMappingHasFilenames, 1);
    mapping.uint(field::kMappingHasLines, 1);
    doc.message(field::kMapping, mapping);
    std::string out = doc.str() + location_table.str() + function_table.str();
    Proto tail;
    tail.sint(field::kDurationNanos, (window.end - window.begin).value);
    tail.message(field::kPeriodType, value_type("cpu", "nanoseconds"));
    tail.sint(field::kPeriod, profile.info.rate_hz > 0 ? 1'000'000'000 / profile.info.rate_hz : 0);
    tail.uint(field::kComment, strings.id("loopspy " + profile.info.tool_version + ": " + profile.info.target_command));
    tail.uint(field::kDefaultSampleType, strings.id("wall"));
    Proto table;
    for (const std::string& s : strings.table()) table.bytes(field::kStringTable, s);
    return out + tail.str() + table.str();
}

Result<std::string> gzip(std::string_view bytes) {
    z_stream z{};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return make_error(ErrorKind::Io, "gzip: cannot start");
    }
    std::string out(deflateBound(&z, bytes.size()) + 32, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    z.avail_in = static_cast<uInt>(bytes.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) return make_error(ErrorKind::Io, "gzip: compression failed");
    return out;
}

}  // namespace loopspy
