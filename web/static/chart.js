// Loss curves as inline SVG: each series a line ({points, cls}), optionally with dots.
window.drawLossChart = function (svg, series) {
  "use strict";
  const W = 600, H = 220, L = 44, R = 10, T = 10, B = 26;
  const all = series.flatMap((s) => s.points);
  if (!all.length) return false;
  const maxStep = Math.max(1, ...all.map((p) => p.step));
  const lo = Math.min(...all.map((p) => p.value)), hi = Math.max(...all.map((p) => p.value));
  const span = hi - lo || 1;
  const x = (s) => L + (W - L - R) * s / maxStep;
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / span);
  const ns = "http://www.w3.org/2000/svg";
  const el = (name, attrs, text) => {
    const e = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  svg.replaceChildren();
  el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" });
  el("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" });
  el("text", { x: L - 6, y: T + 8, "text-anchor": "end" }, hi.toFixed(2));
  el("text", { x: L - 6, y: H - B, "text-anchor": "end" }, lo.toFixed(2));
  el("text", { x: W - R, y: H - 8, "text-anchor": "end" }, `step ${maxStep}`);
  const path = (pts) => pts.map((p, i) => `${i ? "L" : "M"}${x(p.step).toFixed(1)},${y(p.value).toFixed(1)}`).join("");
  for (const s of series) {
    if (!s.points.length) continue;
    el("path", { d: path(s.points), class: s.cls });
    if (s.dots) for (const p of s.points) el("circle", { cx: x(p.step), cy: y(p.value), r: 3, class: s.dots });
  }
  return true;
};
