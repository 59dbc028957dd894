// The loss curves of one job (GET /jobs/{id}/metrics), drawn as SVG under the jobs table.

import { api } from "./api.js";
import { $, show } from "./dom.js";

const SERIES = [
  { key: "gen_gan", label: "generator GAN", color: "#3158d8" },
  { key: "gen_l1", label: "generator L1", color: "#e07b00" },
  { key: "disc", label: "discriminator", color: "#177245" },
  { key: "val_l1", label: "val L1", color: "#b42318" },
];

function svg(name, attributes, text) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

export async function drawChart(jobId) {
  const panel = $("chart-panel");
  const chart = $("chart");
  panel.hidden = false;
  $("chart-title").textContent = `Losses of job ${String(jobId).slice(0, 8)}`;
  let points;
  try {
    points = (await (await api(`jobs/${encodeURIComponent(jobId)}/metrics`)).json()).metrics;
    show($("chart-error"), "");
  } catch (error) {
    show($("chart-error"), `Metrics unavailable — ${error.message}`);
    chart.replaceChildren();
    return;
  }
  const width = 640, height = 240, left = 48, right = 170, top = 12, bottom = 28;
  const plotted = SERIES.map((series) => ({
    ...series,
    points: points.filter((p) => Number.isFinite(p[series.key]) && p[series.key] > 0 && Number.isFinite(p.step))
      .map((p) => [p.step, p[series.key]]),
  })).filter((series) => series.points.length);
  chart.replaceChildren();
  if (!plotted.length) {
    chart.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "No metrics logged yet."));
    return;
  }
  // Losses differ by orders of magnitude (L1 vs GAN terms), so the y axis is logarithmic.
  const all = plotted.flatMap((series) => series.points);
  const steps = all.map(([step]) => step);
  const logs = all.map(([, value]) => Math.log10(value));
  const minStep = Math.min(...steps), maxStep = Math.max(...steps, minStep + 1);
  const minLog = Math.floor(Math.min(...logs) * 2) / 2, maxLog = Math.max(Math.ceil(Math.max(...logs) * 2) / 2, minLog + 0.5);
  const x = (step) => left + ((step - minStep) / (maxStep - minStep)) * (width - left - right);
  const y = (value) => top + (1 - (Math.log10(value) - minLog) / (maxLog - minLog)) * (height - top - bottom);
  for (let exponent = Math.floor(minLog); exponent <= Math.ceil(maxLog); exponent += 1) {
    for (const mantissa of maxLog - minLog > 2 ? [1] : [1, 2, 5]) {
      const value = mantissa * 10 ** exponent;
      if (Math.log10(value) < minLog - 1e-9 || Math.log10(value) > maxLog + 1e-9) continue;
      const label = Number(value.toPrecision(1)).toString();
      chart.append(svg("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), stroke: "#e6e9f0" }));
      chart.append(svg("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end" }, label));
    }
  }
  chart.append(svg("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, stroke: "#b9c1d3" }));
  chart.append(svg("text", { x: left, y: height - 8 }, `step ${minStep}`));
  chart.append(svg("text", { x: width - right, y: height - 8, "text-anchor": "end" }, `step ${maxStep}`));
  plotted.forEach((series, index) => {
    const path = series.points.map(([step, value], i) => `${i ? "L" : "M"}${x(step).toFixed(1)},${y(value).toFixed(1)}`);
    chart.append(svg("path", { d: path.join(" "), fill: "none", stroke: series.color, "stroke-width": 1.8 }));
    const legendY = top + 14 + index * 18;
    chart.append(svg("line", { x1: width - right + 12, x2: width - right + 30, y1: legendY - 4, y2: legendY - 4,
      stroke: series.color, "stroke-width": 3 }));
    const last = series.points[series.points.length - 1][1];
    chart.append(svg("text", { x: width - right + 36, y: legendY }, `${series.label} ${last.toPrecision(3)}`));
  });
}
