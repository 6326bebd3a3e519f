// Reading CPython containers from another process's memory, with the offsets of object_layout.
#pragma once

#include <cstdint>
#include <vector>

#include "core/types.hpp"
#include "symbolizer/process/remote_memory.hpp"

namespace loopspy {

/// The keys of a set object's hash table (empty slots left out; a deleted slot's dummy object
/// is a key too, for the caller to tell apart). Nothing if the table has more than `max_slots`
/// slots or cannot be read.
std::vector<std::uint64_t> read_set_keys(const RemoteMemory& memory, RemoteAddr set, std::uint64_t max_slots);

}  // namespace loopspy
