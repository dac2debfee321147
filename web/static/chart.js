// Loss curves as inline SVG: each series a line ({points, cls}), optionally with dots; a series with
// right: true gets its own scale on a right-hand axis (a VAE's KL is a tenth of its reconstruction).
window.drawLossChart = function (svg, series) {
  "use strict";
  const hasRight = series.some((s) => s.right && s.points.length);
  const all = series.flatMap((s) => s.points);
  if (!all.length) return false;
  // The drawing is as wide as its box (one unit a pixel), so labels keep their size on a phone
  // instead of shrinking with the chart. The box is measured visible: a hidden one has no width.
  const figure = svg.closest("figure");
  const wasHidden = figure ? figure.hidden : false;
  if (figure) figure.hidden = false;
  const box = Math.round(svg.getBoundingClientRect().width);
  if (figure) figure.hidden = wasHidden;
  const W = Math.min(1200, Math.max(300, box || 600)), H = 220, L = 44, R = hasRight ? 44 : 10, T = 10, B = 26;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const maxStep = Math.max(1, ...all.map((p) => p.step));
  const range = (pts) => {
    const lo = Math.min(...pts.map((p) => p.value)), hi = Math.max(...pts.map((p) => p.value));
    return { lo, hi, span: hi - lo || 1 };
  };
  const leftPts = series.filter((s) => !s.right).flatMap((s) => s.points);
  const left = range(leftPts.length ? leftPts : all);
  const right = hasRight ? range(series.filter((s) => s.right).flatMap((s) => s.points)) : left;
  const { lo, hi } = left;
  const x = (s) => L + (W - L - R) * s / maxStep;
  const yOn = (scale) => (v) => T + (H - T - B) * (1 - (v - scale.lo) / scale.span);
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
  if (hasRight) {
    el("line", { x1: W - R, y1: T, x2: W - R, y2: H - B, class: "axis" });
    el("text", { x: W - R + 4, y: T + 8, "text-anchor": "start" }, right.hi.toFixed(2));
    el("text", { x: W - R + 4, y: H - B, "text-anchor": "start" }, right.lo.toFixed(2));
  }
  for (const s of series) {
    if (!s.points.length) continue;
    const y = yOn(s.right ? right : left);
    const path = (pts) => pts.map((p, i) => `${i ? "L" : "M"}${x(p.step).toFixed(1)},${y(p.value).toFixed(1)}`).join("");
    el("path", { d: path(s.points), class: s.cls });
    if (s.dots) for (const p of s.points) el("circle", { cx: x(p.step), cy: y(p.value), r: 3, class: s.dots });
  }
  return true;
};
