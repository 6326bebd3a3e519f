// Sorting events that almost always arrive in order already.
#pragma once

#include <algorithm>

namespace loopspy {

/// std::stable_sort, after an O(n) check that skips it when the range is already in order: a
/// thread's events reach the recording in time order, so replay rarely needs the sort.
template <typename It, typename Less>
void stable_sort_unless_sorted(It begin, It end, Less less) {
    if (!std::is_sorted(begin, end, less)) std::stable_sort(begin, end, less);
}

}  // namespace loopspy
