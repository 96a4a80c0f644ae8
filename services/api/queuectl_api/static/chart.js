// The throughput chart: stacked bars per minute (succeeded below, failed above), drawn as inline SVG.
import { pad } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 960;
const HEIGHT = 220;
const MARGIN = { top: 12, right: 12, bottom: 26, left: 40 };

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function niceMax(value) {
  if (value <= 4) return 4;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}

function clock(iso) {
  const t = new Date(iso);
  return `${pad(t.getHours())}:${pad(t.getMinutes())}`;
}

export function drawThroughput(container, minutes) {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const top = niceMax(Math.max(0, ...minutes.map((m) => m.succeeded + m.failed)));
  const y = (value) => MARGIN.top + plotHeight - (value / top) * plotHeight;
  const slot = plotWidth / Math.max(1, minutes.length);
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart-svg", role: "presentation" });

  for (let i = 0; i <= 4; i += 1) {
    const value = (top / 4) * i;
    chart.append(svg("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(value), y2: y(value), class: "grid" }));
    const label = Number.isInteger(value) ? String(value) : value.toFixed(1);
    chart.append(svg("text", { x: MARGIN.left - 6, y: y(value) + 4, class: "axis", "text-anchor": "end" }, label));
  }
  minutes.forEach((minute, index) => {
    const x = MARGIN.left + index * slot + slot * 0.15;
    const width = slot * 0.7;
    const group = svg("g", { class: "bar" });
    group.append(svg("title", {}, `${clock(minute.minute)}: ${minute.succeeded} succeeded, ${minute.failed} failed`));
    group.append(svg("rect", { x: MARGIN.left + index * slot, y: MARGIN.top, width: slot, height: plotHeight, class: "hover" }));
    if (minute.succeeded > 0) {
      group.append(svg("rect", { x, width, y: y(minute.succeeded), height: y(0) - y(minute.succeeded), class: "succeeded", rx: 1.5 }));
    }
    if (minute.failed > 0) {
      const total = minute.succeeded + minute.failed;
      group.append(svg("rect", { x, width, y: y(total), height: y(minute.succeeded) - y(total), class: "failed", rx: 1.5 }));
    }
    chart.append(group);
    const last = index === minutes.length - 1;
    if (index % 10 === 0 || last) {
      const anchor = last ? "end" : "middle";
      const labelX = last ? WIDTH - MARGIN.right : x + width / 2;
      chart.append(svg("text", { x: labelX, y: HEIGHT - 8, class: "axis", "text-anchor": anchor }, last ? "now" : clock(minute.minute)));
    }
  });
  chart.append(svg("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(0), y2: y(0), class: "baseline" }));
  container.replaceChildren(chart);
}
