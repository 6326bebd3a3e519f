// The common input of the report writers: one call stack with the time attributed to it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace loopspy {

struct WeightedStack {
    std::vector<std::string> frames;  // outermost first; frames[0] is the root, e.g. "thread MainThread (1234)"
    std::uint64_t weight_us = 0;      // weight in microseconds
};

}  // namespace loopspy
