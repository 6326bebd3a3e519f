#include "recording/profile.hpp"

#include <exception>

#include "core/memory.hpp"

namespace loopspy {

StringId Profile::intern_string(std::string_view s) {
    auto it = string_ids_.find(s);
    if (it == string_ids_.end()) return add_string(s);
    if (!task_strings_.empty()) task_strings_.erase(it->second);  // a task's name that code has too: it stays
    return it->second;
}

StringId Profile::intern_task_string(std::string_view s) {
    auto it = string_ids_.find(s);
    if (it != string_ids_.end()) return it->second;
    const StringId id = add_string(s);
    task_strings_.insert(id);
    return id;
}

StringId Profile::add_string(std::string_view s) {
    const auto id = static_cast<StringId>(string_count());
    strings_.emplace_back(s);
    string_ids_.emplace(strings_.back(), id);  // the first holder of a repeated text keeps it
    return id;
}

void Profile::drop_events() {
    samples_dropped_ += samples_.size();
    waits_dropped_ += selector_waits_.size();
    snapshots_dropped_ += snapshots_.size();
    samples_.clear();
    selector_waits_.clear();
    snapshots_.clear();
    for (const TaskRecord& t : tasks_) task_ids_.erase(std::make_tuple(t.pid.value, t.addr, t.coro, t.name, t.coro_name));
    tasks_dropped_ += tasks_.size();
    tasks_.clear();
    // Task names go; every other string stays known by its text (the key of string_ids_).
    for (std::size_t i = 0; i < strings_.size(); ++i) {
        const auto id = static_cast<StringId>(strings_dropped_ + i);
        auto known = string_ids_.find(strings_[i]);
        if (known == string_ids_.end() || known->second != id) continue;
        if (task_strings_.count(id)) string_ids_.erase(known);
        else kept_strings_.emplace(id, &known->first);
    }
    task_strings_.clear();
    strings_dropped_ += strings_.size();
    strings_.clear();
    strings_.shrink_to_fit();
    tasks_.shrink_to_fit();
}

FrameId Profile::intern_frame(std::string_view name, std::string_view file, std::int32_t line, std::uint32_t flags) {
    FrameRecord rec{intern_string(name), intern_string(file), line, flags};
    auto [it, inserted] = frame_ids_.emplace(rec, static_cast<FrameId>(frames_.size()));
    if (inserted) frames_.push_back(rec);
    return it->second;
}

StackId Profile::intern_stack(std::span<const FrameId> frames) {
    const std::string_view key(reinterpret_cast<const char*>(frames.data()), frames.size_bytes());
    if (auto it = stack_ids_.find(key); it != stack_ids_.end()) return it->second;
    const auto id = static_cast<StackId>(stack_offsets_.size());
    stack_ids_.emplace(std::string(key), id);
    stack_offsets_.emplace_back(static_cast<std::uint32_t>(stack_frames_.size()), static_cast<std::uint32_t>(frames.size()));
    stack_frames_.insert(stack_frames_.end(), frames.begin(), frames.end());
    return id;
}

std::span<const FrameId> Profile::stack(StackId id) const {
    auto [begin, size] = stack_offsets_[id];
    return std::span<const FrameId>(stack_frames_.data() + begin, size);
}

std::string Profile::thread_name(Tid tid) const {
    auto it = threads_.find(tid);
    return it == threads_.end() ? std::string() : it->second;
}

std::string Profile::process_label(Pid pid) const {
    std::string label = "process " + std::to_string(pid.value);
    auto it = processes_.find(pid);
    const std::string& command = it != processes_.end() ? it->second.command : info.target_command;
    if (!command.empty()) label += " " + command;
    return label;
}

std::string Profile::format_frame(FrameId id, bool with_line) const {
    const FrameRecord& f = frames_[id];
    std::string out(string(f.name));
    if (f.flags & kFrameSpecial) return out;
    out += " (";
    out += string(f.file);
    if (with_line) {
        out += ':';
        out += std::to_string(f.line);
    }
    out += ')';
    return out;
}

}  // namespace loopspy

namespace loopspy {

TaskId Profile::intern_task(const TaskRecord& t) {
    auto key = std::make_tuple(t.pid.value, t.addr, t.coro, t.name, t.coro_name);
    auto [it, fresh] = task_ids_.try_emplace(key, static_cast<TaskId>(task_count()));
    if (fresh) tasks_.push_back(t);
    return it->second;
}

TaskId Profile::add_task(const TaskRecord& t) {
    const auto id = static_cast<TaskId>(task_count());
    task_ids_.try_emplace(std::make_tuple(t.pid.value, t.addr, t.coro, t.name, t.coro_name), id);
    tasks_.push_back(t);
    return id;
}

namespace {

template <typename T>
void reserve_on_huge_pages(std::vector<T>& v, std::size_t total) {
    if (total <= v.capacity()) return;
    try {
        v.reserve(total);
    } catch (const std::exception&) {
        return;  // an estimate too large to hold: the vector grows as events come instead
    }
    advise_huge_pages(v.data(), v.capacity() * sizeof(T));
}

}  // namespace

void Profile::reserve_events(std::size_t samples, std::size_t waits) {
    reserve_on_huge_pages(samples_, samples);
    reserve_on_huge_pages(selector_waits_, waits);
}

bool Profile::set_sample_task(std::size_t index, std::uint32_t task) {
    if (index < samples_dropped_ || index - samples_dropped_ >= samples_.size()) return false;
    samples_[index - samples_dropped_].task = task;
    return true;
}

bool Profile::set_sample_gil_holder(std::size_t index, Tid holder) {
    if (index < samples_dropped_ || index - samples_dropped_ >= samples_.size()) return false;
    samples_[index - samples_dropped_].gil_holder = holder;
    return true;
}

bool Profile::set_sample_coro(std::size_t index, std::uint64_t coro) {
    if (index < samples_dropped_ || index - samples_dropped_ >= samples_.size()) return false;
    samples_[index - samples_dropped_].coro = coro;
    return true;
}

}  // namespace loopspy
