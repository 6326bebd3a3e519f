// The names a program gave its threads with `threading` (Thread(name=...), Thread.name = ...),
// read from its memory: threading._active maps each running Thread to its object, whose _name
// and _native_id say which thread has which name.
#pragma once

#include <string>
#include <unordered_map>

#include "core/types.hpp"
#include "symbolizer/cpython/interpreter.hpp"
#include "symbolizer/process/remote_memory.hpp"

namespace loopspy {

/// Each running threading.Thread's name, by its _native_id: the thread's id as the target sees it
/// (ThreadState::own_tid). Empty when threading is not imported, cannot be read, or the version's
/// object layout does not say where sys.modules is (3.14+, which name their OS threads after
/// their Thread objects themselves, so /proc's name is the program's there).
std::unordered_map<Tid, std::string> read_threading_names(const RemoteMemory& memory, const Interpreter& interp);

}  // namespace loopspy
