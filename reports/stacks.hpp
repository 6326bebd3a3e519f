// The common input of the report writers: one call stack with the time attributed to it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace loopspy {

/// Frames as lines, a run of the same frame (recursion: `descend` forty times at one line) as one
/// line with its count: "descend (deep.py:12) ×40".
template <typename Frames, typename Text>
std::vector<std::string> folded(const Frames& frames, Text text) {
    std::vector<std::string> out;
    std::size_t run = 0;
    for (auto it = frames.begin(); it != frames.end(); ++it) {
        std::string t = text(*it);
        if (!out.empty() && run > 0 && t == out.back()) {
            ++run;
            continue;
        }
        if (run > 1) out.back() += " \u00d7" + std::to_string(run);
        out.push_back(std::move(t));
        run = 1;
    }
    if (run > 1) out.back() += " \u00d7" + std::to_string(run);
    return out;
}

struct WeightedStack {
    std::vector<std::string> frames;  // outermost first; frames[0] is the root, e.g. "thread MainThread (1234)"
    std::uint64_t weight_us = 0;      // weight in microseconds
};

}  // namespace loopspy
