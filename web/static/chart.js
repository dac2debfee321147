// Loss curves as inline SVG: training loss as a line, validation loss as a line with dots.
window.drawLossChart = function (svg, train, valid) {
  "use strict";
  const W = 600, H = 220, L = 44, R = 10, T = 10, B = 26;
  const all = train.concat(valid);
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
  if (train.length) el("path", { d: path(train), class: "train-line" });
  if (valid.length) {
    el("path", { d: path(valid), class: "valid-line" });
    for (const p of valid) el("circle", { cx: x(p.step), cy: y(p.value), r: 3, class: "valid-dot" });
  }
  return true;
};
