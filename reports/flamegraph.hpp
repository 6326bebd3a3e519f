// Interactive flame graph: one self-contained SVG file (inline CSS and JavaScript, no external
// resources). The root ("all") is at the bottom and callees are stacked above their callers;
// the width of a frame is proportional to its time.
//
// In a browser: hover shows a frame's details in the status line, click zooms into a frame,
// "Reset zoom" (or Escape) undoes it, "Search" (or Ctrl-F) highlights the frames whose name
// matches a regular expression and shows the matched share of the time, "Clear" removes the
// highlight, "Icicle" flips the graph upside down. Without scripting (e.g. in an <img>) the
// graph still shows with labels truncated to fit.
//
// Safety: names are never part of the script. They appear only as escaped element text
// (XML-escaped &, <, >, ", '), with control characters removed, invalid UTF-8 replaced by
// U+FFFD and U+FFFE/U+FFFF (not allowed in XML) replaced by U+FFFD. The script reads them
// back from the DOM and only ever assigns them through textContent.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "reports/stacks.hpp"

namespace loopspy {

struct FlameGraphOptions {
    std::string title = "loopspy";
    std::string title_tooltip;  // shown on hovering the title (the whole command the title shortens)
    std::string subtitle;
    std::string count_name = "time";
    int width = 1200;           // pixels (at least 200)
    int frame_height = 16;      // pixels per stack level (at least 8)
    double min_width_px = 0.1;  // narrower frames are left out; their time still counts in their parent
};

// Renders the stacks as an SVG document. Identical frames along identical paths are merged;
// siblings are ordered by name, so the output does not depend on the input order. Stacks without
// frames or without weight are ignored; if nothing remains the SVG just says "no samples".
std::string render_flamegraph(const std::vector<WeightedStack>& stacks, const FlameGraphOptions& opts);

// Text made safe for XML element content and attribute values: invalid UTF-8 and U+FFFE/U+FFFF
// become U+FFFD, control characters (C0, DEL, C1) are removed, and & < > " ' are written as
// &amp; &lt; &gt; &quot; &apos;.
std::string xml_escape(std::string_view text);

// The fill colour of a frame, "rgb(r,g,b)", a function of its name only (plus whether it is a
// thread root): thread roots (frames[0] starting with "thread ") are blue, special frames
// ("<...>" as a whole name, e.g. "<idle>", "<truncated>", "<unknown>") are green-grey, and
// everything else gets a warm red/orange/yellow shade picked by a hash of the name.
std::string flame_color(std::string_view name, bool thread_root = false);

}  // namespace loopspy
