#include "symbolizer/cpython/object_layout.hpp"

namespace loopspy {
namespace {

constexpr auto kSized = DictKeysHeader::SizeField, kLog2 = DictKeysHeader::Log2IndexBytes;

constexpr ObjectLayout kLayouts[] = {
    {8, TaskSource::ModuleSets, LongHeader::SignedSize, ManagedDict::DictOffset, 0, "_all_tasks", false,
     56, 872, 72, 104, 112, 120, 48, kSized},
    {9, TaskSource::ModuleSets, LongHeader::SignedSize, ManagedDict::DictOffset, 0, "_all_tasks", false,
     856, 864, 80, 144, 152, 160, 48, kSized},
    {10, TaskSource::ModuleSets, LongHeader::SignedSize, ManagedDict::DictOffset, 0, "_all_tasks", false,
     856, 872, 88, 152, 160, 168, 72, kSized},
    {11, TaskSource::ModuleSets, LongHeader::SignedSize, ManagedDict::PointersBefore, 0, "_all_tasks", false,
     888, 872, 88, 128, 136, 144, 72, kLog2},
    {12, TaskSource::ModuleSets, LongHeader::Tagged, ManagedDict::TaggedValues, 0, "_scheduled_tasks", true,
     944, 880, 88, 128, 136, 144, 72, kLog2},
    {13, TaskSource::ModuleSets, LongHeader::Tagged, ManagedDict::InlineValues, 8, "_scheduled_tasks", true,
     7656, 880, 96, 112, 120, 128, 72, kLog2},
    {14, TaskSource::AsyncioDebug, LongHeader::Tagged, ManagedDict::InlineValues, 8, nullptr, false, 0, 0, 0, 0, 0, 0, 72, kLog2},
    {15, TaskSource::AsyncioDebug, LongHeader::Tagged, ManagedDict::InlineValues, 8, nullptr, false, 0, 0, 0, 0, 0, 0, 72, kLog2},
};

}  // namespace

const ObjectLayout* object_layout(int minor) {
    for (const ObjectLayout& l : kLayouts) {
        if (l.minor == minor) return &l;
    }
    return nullptr;
}

}  // namespace loopspy
