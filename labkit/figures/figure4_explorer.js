// Front end of labkit.figures.explorer.Figure4Explorer (an anywidget module).
//
// The kernel sends, once per β mode, every α position's arrays (x, H_α, D_{α,β}, H'_α, D'_{α,β}) as float32
// buffers, with each position's marks (where the curves part, where H'_α saturates) and the loss panel's note.
// This module only picks the arrays of the slider's position and draws them as SVG: it computes no loss.
// α moves are handled here alone (and reported to the kernel without waiting for it); β and the "β = 1/α" box are
// sent to the kernel, which answers with a new family.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 460, HEIGHT = 330;
const MARGIN = { left: 62, right: 14, top: 34, bottom: 44 };
const MARK_COLOR = "#555555";
const SLIDER_PX = 360, THUMB_PX = 16;  // the α and β range inputs, and Chromium's thumb (the track is inset by half)

function floats(value) {
  // ipywidgets hands binary traits over as a DataView (or an ArrayBuffer); copy to get 4-byte alignment
  if (!value) return new Float32Array(0);
  if (value instanceof DataView) return new Float32Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  if (value instanceof ArrayBuffer) return new Float32Array(value.slice(0));
  if (ArrayBuffer.isView(value)) return new Float32Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  return new Float32Array(0);
}

function fmt(v) {
  // like Python's "{:.4g}" (labkit.figures.panels.format_value): 0.5, 0.0013, 630, 1000
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e-4 && a < 1e4) return String(Number(v.toPrecision(4)));
  return v.toExponential(2).replace(/\.?0+e/, "e").replace("e+", "e");
}

function niceTicks(lo, hi, count) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

function el(tag, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function richText(node, html) {
  // the labels are plotly-style HTML with <sub>/<sup>: set them as SVG tspans (text only, no markup is parsed)
  const parts = html.split(/(<\/?su[bp]>)/);
  let shift = null;
  for (const part of parts) {
    if (part === "<sub>" || part === "<sup>") { shift = part === "<sub>" ? "sub" : "super"; continue; }
    if (part === "</sub>" || part === "</sup>") { shift = null; continue; }
    if (!part) continue;
    const span = el("tspan", shift ? { "baseline-shift": shift, "font-size": "8px" } : {}, node);
    span.textContent = part;
  }
}

class Panel {
  constructor(parent, keys, labels, colors, dashed, ylabel) {
    this.keys = keys;
    this.svg = el("svg", { width: WIDTH, height: HEIGHT, viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "labkit-explorer-panel" });
    this.svg.style.fontFamily = "sans-serif";
    this.svg.style.fontSize = "11px";
    parent.appendChild(this.svg);
    this.grid = el("g", { class: "grid" }, this.svg);
    el("rect", { x: MARGIN.left, y: MARGIN.top, width: WIDTH - MARGIN.left - MARGIN.right,
                 height: HEIGHT - MARGIN.top - MARGIN.bottom, fill: "none", stroke: "#444" }, this.svg);
    this.paths = keys.map((k) => el("path", { fill: "none", stroke: colors[k], "stroke-width": 1.8,
      "stroke-dasharray": dashed.includes(k) ? "6 4" : "none", class: `curve curve-${k}` }, this.svg));
    this.mark = el("path", { fill: "none", stroke: MARK_COLOR, "stroke-width": 1, "stroke-dasharray": "2 3",
                             class: "mark" }, this.svg);
    this.markLabel = el("text", { fill: MARK_COLOR, "font-size": "11px", class: "mark-label" }, this.svg);
    this.note = el("text", { fill: MARK_COLOR, "font-size": "11px", "text-anchor": "middle", class: "note" }, this.svg);
    this.title = el("text", { x: (WIDTH + MARGIN.left - MARGIN.right) / 2, y: 20, "text-anchor": "middle",
                              "font-size": "13px" }, this.svg);
    el("text", { x: (WIDTH + MARGIN.left - MARGIN.right) / 2, y: HEIGHT - 8, "text-anchor": "middle" }, this.svg).textContent = "x";
    el("text", { x: 14, y: (HEIGHT + MARGIN.top - MARGIN.bottom) / 2, "text-anchor": "middle",
                 transform: `rotate(-90 14 ${(HEIGHT + MARGIN.top - MARGIN.bottom) / 2})` }, this.svg).textContent = ylabel;
    const legend = el("g", { class: "legend" }, this.svg);
    keys.forEach((k, i) => {
      const y = MARGIN.top + 14 + 16 * i, x = MARGIN.left + 10;
      el("line", { x1: x, x2: x + 24, y1: y, y2: y, stroke: colors[k], "stroke-width": 1.8,
                   "stroke-dasharray": dashed.includes(k) ? "6 4" : "none" }, legend);
      richText(el("text", { x: x + 30, y: y + 4 }, legend), labels[k]);
    });
  }

  draw(x, curves, title, markAt, markLabel, note) {
    let ylo = Infinity, yhi = -Infinity;
    for (const y of curves) for (const v of y) { if (v < ylo) ylo = v; if (v > yhi) yhi = v; }
    if (!(yhi > ylo)) { ylo -= 1; yhi += 1; }
    const pad = 0.05 * (yhi - ylo);
    ylo -= pad; yhi += pad;
    const xlo = x[0], xhi = x[x.length - 1];
    const w = WIDTH - MARGIN.left - MARGIN.right, h = HEIGHT - MARGIN.top - MARGIN.bottom;
    const sx = (v) => MARGIN.left + ((v - xlo) / (xhi - xlo)) * w;
    const sy = (v) => MARGIN.top + (1 - (v - ylo) / (yhi - ylo)) * h;
    curves.forEach((y, i) => {
      const parts = new Array(x.length);
      for (let j = 0; j < x.length; j++) parts[j] = `${j ? "L" : "M"}${sx(x[j]).toFixed(1)},${sy(y[j]).toFixed(1)}`;
      this.paths[i].setAttribute("d", parts.join(""));
    });
    this.grid.replaceChildren();
    for (const t of niceTicks(xlo, xhi, 6)) {
      el("line", { x1: sx(t), x2: sx(t), y1: MARGIN.top, y2: MARGIN.top + h, stroke: "#e5e5e5" }, this.grid);
      el("text", { x: sx(t), y: MARGIN.top + h + 16, "text-anchor": "middle" }, this.grid).textContent = fmt(t);
    }
    for (const t of niceTicks(ylo, yhi, 5)) {
      el("line", { x1: MARGIN.left, x2: MARGIN.left + w, y1: sy(t), y2: sy(t), stroke: "#e5e5e5" }, this.grid);
      el("text", { x: MARGIN.left - 6, y: sy(t) + 4, "text-anchor": "end" }, this.grid).textContent = fmt(t);
    }
    this.title.textContent = title;
    // as labkit.figures.panels.overlays: lines at ±markAt from the bottom up to 90 % of the height (45 % under a
    // note), the label at the foot of the right one, the note's lines centred 55 % up
    const top = ylo + (note ? 0.45 : 0.9) * (yhi - ylo);
    const visible = Number.isFinite(markAt);
    this.mark.setAttribute("d", visible ? [-markAt, markAt].map((m) =>
      `M${sx(m).toFixed(1)},${sy(ylo).toFixed(1)}L${sx(m).toFixed(1)},${sy(top).toFixed(1)}`).join("") : "");
    this.markLabel.textContent = visible ? markLabel : "";
    if (visible) { this.markLabel.setAttribute("x", sx(markAt) + 4); this.markLabel.setAttribute("y", sy(ylo) - 4); }
    this.note.replaceChildren();
    const lines = (note || "").split("\n");
    lines.forEach((line, k) => {
      const span = el("tspan", { x: sx(0), y: sy(ylo + 0.55 * (yhi - ylo)) + 13 * (k - (lines.length - 1) / 2) + 4 }, this.note);
      span.textContent = line;
    });
  }
}

function render({ model, el: root }) {
  root.classList.add("labkit-figure4-explorer");
  const keys = model.get("curve_keys");
  const labels = model.get("labels"), colors = model.get("colors"), dashed = model.get("dashed");
  const ylabels = model.get("ylabels");
  const alphas = model.get("alphas"), betas = model.get("betas");

  const controls = document.createElement("div");
  controls.className = "labkit-explorer-controls";
  controls.style.cssText = "display:flex;gap:14px;align-items:center;flex-wrap:wrap;font-family:sans-serif;font-size:13px";
  root.appendChild(controls);
  function slider(name, values) {
    // a range input over the positions, the decades (10⁻³ … 10³) ticked under it and labelled
    const n = values.length;
    const label = document.createElement("label");
    label.style.cssText = "display:flex;gap:6px;align-items:flex-start";
    const caption = document.createElement("span");
    caption.textContent = name;
    const column = document.createElement("span");
    column.style.cssText = `display:flex;flex-direction:column;width:${SLIDER_PX}px`;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: 0, max: n - 1, step: 1 });
    input.style.cssText = `width:${SLIDER_PX}px;margin:0`;
    input.setAttribute("aria-label", name);
    // decades as labels under the track; no <datalist> tick marks: Chromium snaps a dragged range input to them
    const decades = [];
    values.forEach((v, i) => { const k = Math.log10(v); if (Math.abs(k - Math.round(k)) < 1e-9) decades.push([i, Math.round(k)]); });
    const ticks = document.createElement("span");
    ticks.className = "labkit-explorer-decades";
    ticks.style.cssText = "position:relative;height:1.3em;font-size:11px;color:#666";
    const sup = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
    for (const [i, k] of decades) {
      const tick = document.createElement("span");
      tick.textContent = k === 0 ? "1" : k === 1 ? "10" : "10" + String(k).split("").map((c) => sup[c]).join("");
      const left = THUMB_PX / 2 + (i / (n - 1)) * (SLIDER_PX - THUMB_PX);
      tick.style.cssText = `position:absolute;left:${left.toFixed(1)}px;transform:translateX(-50%)`;
      ticks.appendChild(tick);
    }
    column.append(input, ticks);
    const readout = document.createElement("span");
    readout.style.cssText = "min-width:4em;font-variant-numeric:tabular-nums";
    label.append(caption, column, readout);
    controls.appendChild(label);
    return { input, readout };
  }
  const alpha = slider("α", alphas);
  alpha.input.classList.add("labkit-explorer-alpha");
  const beta = slider("β", betas);
  beta.input.classList.add("labkit-explorer-beta");
  const linkLabel = document.createElement("label");
  const link = document.createElement("input");
  link.type = "checkbox";
  link.className = "labkit-explorer-link";
  linkLabel.append(link, document.createTextNode(" β = 1/α"));
  controls.appendChild(linkLabel);
  const status = document.createElement("span");
  status.className = "labkit-explorer-status";
  status.style.color = "#666";
  controls.appendChild(status);
  const offline = Boolean(model.get("offline"));  // an offline report: no kernel will recompute a family
  if (offline) {  // the same words and class as every other control a report cannot run (labkit.lab.report)
    const note = document.createElement("span");
    note.className = "labkit-explorer-offline labkit-needs-lab";
    note.style.color = "#666";
    const code = document.createElement("code");
    code.textContent = "make lab";
    note.append("offline copy: α moves here; β and “β = 1/α” need the live lab: ", code);
    controls.appendChild(note);
  }

  const plots = document.createElement("div");
  plots.style.cssText = "display:flex;flex-wrap:wrap";
  root.appendChild(plots);
  const panels = [new Panel(plots, keys.slice(0, 2), labels, colors, dashed, ylabels[0]),
                  new Panel(plots, keys.slice(2, 4), labels, colors, dashed, ylabels[1])];

  let x = floats(model.get("x_data")), y = floats(model.get("y_data")), marks = floats(model.get("mark_data"));
  const markLabels = model.get("mark_labels");
  const n = model.get("n_points");
  const nearestBeta = (value) => {
    let best = 0;
    for (let i = 1; i < betas.length; i++) if (Math.abs(Math.log(betas[i] / value)) < Math.abs(Math.log(betas[best] / value))) best = i;
    return best;
  };

  function betaAt(i) {
    return model.get("linked") ? 1 / alphas[i] : model.get("beta");
  }

  function paint(i) {
    const xs = x.subarray(i * n, (i + 1) * n);
    const curve = (c) => y.subarray((i * 4 + c) * n, (i * 4 + c + 1) * n);
    const b = betaAt(i);
    const title = `α = ${fmt(alphas[i])}, β = ${fmt(b)}`;
    const notes = model.get("notes");
    panels[0].draw(xs, [curve(0), curve(1)], title, marks[i * 2], markLabels[0], notes[i]);
    panels[1].draw(xs, [curve(2), curve(3)], title, marks[i * 2 + 1], markLabels[1], "");
    alpha.readout.textContent = fmt(alphas[i]);
    beta.readout.textContent = fmt(b);
    if (model.get("linked")) beta.input.value = nearestBeta(Math.min(Math.max(b, betas[0]), betas[betas.length - 1]));
  }

  function sync() {
    const linked = model.get("linked");
    link.checked = linked;
    beta.input.disabled = linked || offline;
    link.disabled = offline;
    if (!linked) beta.input.value = nearestBeta(model.get("beta"));
    alpha.input.value = model.get("index");
    const family = model.get("family_beta");
    const current = linked ? "1/α" : fmt(model.get("beta"));
    status.textContent = family === current ? "" : "computing…";
    paint(Number(alpha.input.value));
  }

  alpha.input.addEventListener("input", () => {
    const i = Number(alpha.input.value);
    paint(i);
    model.set("index", i);
    model.save_changes();
  });
  beta.input.addEventListener("change", () => {
    model.set("beta", betas[Number(beta.input.value)]);
    model.save_changes();
    sync();
  });
  link.addEventListener("change", () => {
    const linked = link.checked;  // read first: model.set below re-syncs the box from the model
    if (!linked) {  // start from the β on screen (1/α), so the curves do not jump
      const b = 1 / alphas[Number(alpha.input.value)];
      model.set("beta", betas[nearestBeta(Math.min(Math.max(b, betas[0]), betas[betas.length - 1]))]);
    }
    model.set("linked", linked);
    model.save_changes();
    sync();
  });
  beta.input.addEventListener("input", () => { beta.readout.textContent = fmt(betas[Number(beta.input.value)]); });
  const onFamily = () => {
    x = floats(model.get("x_data")); y = floats(model.get("y_data")); marks = floats(model.get("mark_data")); sync();
  };
  const handlers = [["change:x_data", onFamily], ["change:y_data", onFamily], ["change:mark_data", onFamily],
                    ["change:notes", sync], ["change:family_beta", sync],
                    ["change:index", sync], ["change:linked", sync], ["change:beta", sync]];
  for (const [event, handler] of handlers) model.on(event, handler);
  sync();
  return () => { for (const [event, handler] of handlers) model.off(event, handler); };
}

export default { render };
