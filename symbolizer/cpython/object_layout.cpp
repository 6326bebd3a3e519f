#include "symbolizer/cpython/object_layout.hpp"

namespace loopspy {
namespace {

constexpr ObjectLayout kLayouts[] = {
    {11, TaskSource::ModuleSets, LongHeader::SignedSize, ManagedDict::PointersBefore, 0, "_all_tasks", false,
     888, 872, 88, 128, 136, 144},
    {12, TaskSource::ModuleSets, LongHeader::Tagged, ManagedDict::TaggedValues, 0, "_scheduled_tasks", true,
     944, 880, 88, 128, 136, 144},
    {13, TaskSource::ModuleSets, LongHeader::Tagged, ManagedDict::InlineValues, 8, "_scheduled_tasks", true,
     7656, 880, 96, 112, 120, 128},
    {14, TaskSource::AsyncioDebug, LongHeader::Tagged, ManagedDict::InlineValues, 8, nullptr, false, 0, 0, 0, 0, 0, 0},
    {15, TaskSource::AsyncioDebug, LongHeader::Tagged, ManagedDict::InlineValues, 8, nullptr, false, 0, 0, 0, 0, 0, 0},
};

}  // namespace

const ObjectLayout* object_layout(int minor) {
    for (const ObjectLayout& l : kLayouts) {
        if (l.minor == minor) return &l;
    }
    return nullptr;
}

}  // namespace loopspy
