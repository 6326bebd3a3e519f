#include "reports/speedscope.hpp"

#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "reports/thread_frames.hpp"
#include "reports/timeline.hpp"

namespace loopspy {

namespace {

using Json = nlohmann::ordered_json;

/// speedscope's shared frame table: one entry per (name, file, line).
class FrameTable {
public:
    explicit FrameTable(const Profile& profile) : profile_(profile) {}

    int python(FrameId id) {
        const FrameRecord& f = profile_.frame(id);
        auto [it, fresh] = python_.try_emplace(id, 0);
        if (fresh) {
            Json j{{"name", std::string(profile_.string(f.name))}};
            if (!(f.flags & kFrameSpecial)) {
                j["file"] = std::string(profile_.string(f.file));
                if (f.line > 0) j["line"] = f.line;
            }
            it->second = add(std::move(j));
        }
        return it->second;
    }
    int special(const std::string& name) {
        auto [it, fresh] = special_.try_emplace(name, 0);
        if (fresh) it->second = add(Json{{"name", name}});
        return it->second;
    }
    Json take() { return std::move(frames_); }

private:
    int add(Json frame) {
        frames_.push_back(std::move(frame));
        return static_cast<int>(frames_.size()) - 1;
    }
    const Profile& profile_;
    std::map<FrameId, int> python_;
    std::map<std::string, int> special_;
    Json frames_ = Json::array();
};

}  // namespace

std::string render_speedscope(const Profile& profile, FlameMode mode, const std::vector<Tid>& loop_threads,
                              const AnalysisFilter& filter) {
    const TimeWindow window = analysis_window(profile, filter);
    const Nanoseconds origin = profile.info.start;
    FrameTable table(profile);
    Json profiles = Json::array();
    for (const auto& [tid, spans] : thread_timelines(profile, mode, loop_threads, filter)) {
        Json events = Json::array();
        std::vector<int> open;  // the frames open now, outermost first
        std::vector<int> next;
        Nanoseconds open_until{0};
        auto at = [&](Nanoseconds t) { return (t - origin).value; };
        auto close_to = [&](std::size_t keep, Nanoseconds t) {
            while (open.size() > keep) {
                events.push_back(Json{{"type", "C"}, {"frame", open.back()}, {"at", at(t)}});
                open.pop_back();
            }
        };
        for (const TimelineSpan& span : spans) {
            next.clear();
            if (span.kind != TimelineSpan::Kind::Idle) {
                for (FrameId f : profile.stack(span.stack)) next.push_back(table.python(f));
            }
            if (span.kind == TimelineSpan::Kind::OffCpu) next.push_back(table.special(span.reason));
            if (span.kind == TimelineSpan::Kind::Idle) next.push_back(table.special(std::string(kIdleFrame)));
            // A gap (the thread was not sampled) closes everything where the last span ended.
            if (!open.empty() && open_until < span.start) close_to(0, open_until);
            std::size_t common = 0;
            while (common < open.size() && common < next.size() && open[common] == next[common]) ++common;
            close_to(common, span.start);
            for (std::size_t k = common; k < next.size(); ++k) {
                events.push_back(Json{{"type", "O"}, {"frame", next[k]}, {"at", at(span.start)}});
                open.push_back(next[k]);
            }
            open_until = span.end;
        }
        close_to(0, open_until);
        std::string name;
        for (const std::string& root : root_frames(profile, tid)) name += (name.empty() ? "" : " / ") + root;
        profiles.push_back(Json{{"type", "evented"},
                                {"name", name},
                                {"unit", "nanoseconds"},
                                {"startValue", at(window.begin)},
                                {"endValue", at(window.end)},
                                {"events", std::move(events)}});
    }
    Json doc;
    doc["$schema"] = "https://www.speedscope.app/file-format-schema.json";
    doc["shared"] = Json{{"frames", table.take()}};
    doc["profiles"] = std::move(profiles);
    doc["name"] = "loopspy: " + (profile.info.target_command.empty() ? "pid " + std::to_string(profile.info.pid.value)
                                                                       : profile.info.target_command) +
                  " (" + std::string(flame_mode_name(mode)) + ")";
    doc["activeProfileIndex"] = 0;
    doc["exporter"] = "loopspy " + profile.info.tool_version;
    return doc.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace loopspy
