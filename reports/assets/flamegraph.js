(function () {
  'use strict';
  var doc = document, svg = doc.documentElement;
  var SVGNS = 'http://www.w3.org/2000/svg';
  var HIGHLIGHT = 'rgb(224,0,224)';
  function attr(el, name) { return parseFloat(el.getAttribute(name)); }
  var W = attr(svg, 'width'), XPAD = attr(svg, 'data-xpad'), FH = attr(svg, 'data-fh');
  var BASE = attr(svg, 'data-base'), TOP = attr(svg, 'data-top'), TOTAL = attr(svg, 'data-total');
  var CHARW = attr(svg, 'data-charw');
  var FULL = W - 2 * XPAD;
  var framesG = doc.getElementById('frames');
  var details = doc.getElementById('details'), matched = doc.getElementById('matched');
  var resetBtn = doc.getElementById('reset'), searchBtn = doc.getElementById('search');
  var clearBtn = doc.getElementById('clear'), invertBtn = doc.getElementById('invert');
  var defaultDetails = details.textContent;
  var nodes = [], zoomed = null, inverted = false, term = null;

  function show(el, on) { if (on) el.classList.remove('hidden'); else el.classList.add('hidden'); }

  function measureCharWidth() {
    var t = doc.createElementNS(SVGNS, 'text');
    t.textContent = 'mmmmmmmmmmmmmmmmmmmm';
    framesG.appendChild(t);
    var w = 0;
    try { w = t.getComputedTextLength(); } catch (e) { w = 0; }
    framesG.removeChild(t);
    if (w > 0) CHARW = w / 20;
  }

  function fit(n, w) {
    var room = Math.floor((w - 6) / CHARW), s = '';
    if (room >= 1) {
      if (!n.chars) n.chars = Array.from(n.name);
      if (n.chars.length <= room) s = n.name;
      else if (room >= 3) s = n.chars.slice(0, room - 1).join('') + '\u2026';
    }
    if (n.text.textContent !== s) n.text.textContent = s;
  }

  function layout() {
    var zo = zoomed ? zoomed.o : 0, zv = zoomed ? zoomed.v : TOTAL, zd = zoomed ? zoomed.d : 0;
    var scale = FULL / zv;
    for (var i = 0; i < nodes.length; i++) {
      var n = nodes[i], visible, x, w;
      if (n.d < zd) {
        visible = n.o <= zo && n.o + n.v >= zo + zv;
        x = XPAD; w = FULL;
      } else {
        visible = n.o >= zo && n.o + n.v <= zo + zv;
        x = XPAD + (n.o - zo) * scale; w = n.v * scale;
      }
      show(n.g, visible);
      if (!visible) continue;
      if (n.d < zd) n.g.classList.add('anc'); else n.g.classList.remove('anc');
      var y = inverted ? TOP + n.d * FH : BASE - n.d * FH;
      n.rect.setAttribute('x', x.toFixed(2));
      n.rect.setAttribute('y', y);
      n.rect.setAttribute('width', w.toFixed(2));
      n.text.setAttribute('x', (x + 3).toFixed(2));
      n.text.setAttribute('y', (y + n.ty).toFixed(2));
      fit(n, w);
    }
  }

  function zoomTo(n) {
    zoomed = n.d === 0 ? null : n;
    show(resetBtn, zoomed !== null);
    layout();
  }

  function resetZoom() { zoomTo(nodes[0]); }

  function applySearch(re) {
    var ranges = [], count = 0;
    for (var i = 0; i < nodes.length; i++) {
      var n = nodes[i];
      if (n.d > 0 && re.test(n.name)) {
        n.rect.setAttribute('fill', HIGHLIGHT);
        ranges.push([n.o, n.o + n.v]);
        count++;
      } else {
        n.rect.setAttribute('fill', n.fill);
      }
    }
    ranges.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });
    var covered = 0, end = 0;
    for (var k = 0; k < ranges.length; k++) {
      var r = ranges[k];
      if (r[1] <= end) continue;
      covered += r[1] - Math.max(r[0], end);
      end = r[1];
    }
    var pct = TOTAL > 0 ? 100 * covered / TOTAL : 0;
    matched.textContent = 'Matched: ' + pct.toFixed(2) + '% (' + count + (count === 1 ? ' frame)' : ' frames)');
    searchBtn.classList.add('active');
    show(clearBtn, true);
  }

  function search() {
    var input = window.prompt('Search frames (regular expression):', term === null ? '' : term);
    if (input === null || input === '') return;
    var re;
    try { re = new RegExp(input); } catch (e) {
      // The browser's message already says "Invalid regular expression: /x/: why".
      details.textContent = 'Search: ' + e.message;
      return;
    }
    term = input;
    applySearch(re);
  }

  function clearSearch() {
    term = null;
    for (var i = 0; i < nodes.length; i++) nodes[i].rect.setAttribute('fill', nodes[i].fill);
    matched.textContent = '';
    searchBtn.classList.remove('active');
    show(clearBtn, false);
  }

  function toggleInvert() {
    inverted = !inverted;
    invertBtn.textContent = inverted ? 'Flame' : 'Icicle';
    layout();
  }

  function attach(n) {
    n.g.addEventListener('click', function () { zoomTo(n); });
    n.g.addEventListener('mouseover', function () { details.textContent = n.name + '  \u2014  ' + n.info; });
    n.g.addEventListener('mouseout', function () { details.textContent = defaultDetails; });
  }

  var groups = framesG.children;
  for (var i = 0; i < groups.length; i++) {
    var g = groups[i];
    var rect = g.getElementsByTagName('rect')[0], text = g.getElementsByTagName('text')[0];
    var full = g.getElementsByTagName('title')[0].textContent, nl = full.indexOf('\n');
    var ry = attr(rect, 'y');
    var n = {
      g: g, rect: rect, text: text,
      name: nl < 0 ? full : full.slice(0, nl), info: nl < 0 ? '' : full.slice(nl + 1), chars: null,
      o: attr(g, 'data-o'), v: attr(g, 'data-v'), d: Math.round((BASE - ry) / FH),
      fill: rect.getAttribute('fill'), ty: attr(text, 'y') - ry
    };
    nodes.push(n);
    attach(n);
  }

  resetBtn.addEventListener('click', resetZoom);
  searchBtn.addEventListener('click', search);
  clearBtn.addEventListener('click', clearSearch);
  invertBtn.addEventListener('click', toggleInvert);
  doc.addEventListener('keydown', function (e) {
    if (((e.ctrlKey || e.metaKey) && (e.key === 'f' || e.key === 'F')) || e.key === 'F3') {
      e.preventDefault();
      search();
    } else if (e.key === 'Escape') {
      if (zoomed) resetZoom(); else if (term !== null) clearSearch();
    }
  });

  // Opened on its own in a browser, the graph takes the window's width (an <img> runs no script
  // and keeps the width it was written with).
  function fitWindow() {
    var w = Math.max(200, Math.floor(window.innerWidth || 0));
    if (!w || w === W) return;
    W = w;
    FULL = W - 2 * XPAD;
    var h = attr(svg, 'height');
    svg.setAttribute('width', W);
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + h);
    var bg = doc.querySelector('rect.bg');
    if (bg) bg.setAttribute('width', W);
    ['title', 'subtitle'].forEach(function (id) {
      var el = doc.getElementById(id);
      if (el) el.setAttribute('x', W / 2);
    });
    searchBtn.setAttribute('x', W - XPAD);
    clearBtn.setAttribute('x', W - XPAD - 58);
    matched.setAttribute('x', W - XPAD);
    if (nodes.length > 0) layout();
  }

  measureCharWidth();
  if (nodes.length > 0) layout();
  if (typeof window !== 'undefined' && window.innerWidth && window.top === window.self) {
    fitWindow();
    window.addEventListener('resize', fitWindow);
  }
})();
