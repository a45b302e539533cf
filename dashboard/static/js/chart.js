// A small wrapper around uPlot: a responsive time-series line chart that follows the theme.
import uPlot from "/static/vendor/uplot/uPlot.esm.js";

/** windowS(): seconds of history the x axis shows, ending now (a fixed window, so a few close
 * points do not stretch into a meaningless scale). */
export function lineChart(container, label, unit = "", windowS = () => 3600) {
  const style = getComputedStyle(document.body);
  const ink = style.color || "#888";
  const accent = style.getPropertyValue("--pico-primary").trim() || "#1565c0";
  const grid = { stroke: "rgba(128,128,128,0.2)" };
  const opts = {
    width: Math.max(240, container.clientWidth),
    height: 220,
    series: [{}, { label, stroke: accent, width: 2, fill: "rgba(21,101,192,0.08)",
      value: (u, v) => (v === null || v === undefined ? "–" : `${v}${unit ? " " + unit : ""}`) }],
    axes: [{ stroke: ink, grid }, { stroke: ink, grid, size: 60 }],
    scales: { x: { time: true, range: () => { const now = Date.now() / 1000; return [now - windowS(), now]; } } },
    legend: { show: true },
  };
  const plot = new uPlot(opts, [[], []], container);
  new ResizeObserver(() => plot.setSize({ width: Math.max(240, container.clientWidth), height: 220 }))
    .observe(container);
  return {
    /** points: [[unix seconds, value], …] */
    set(points) { plot.setData([points.map((p) => p[0]), points.map((p) => p[1])]); },
    plot,
  };
}

/** A bar chart of labelled values (volume by weekday, by drinker): uPlot's bars path. */
export function barChart(container, labels, values, unit = "ml") {
  const style = getComputedStyle(document.body);
  const ink = style.color || "#888";
  const accent = style.getPropertyValue("--pico-primary").trim() || "#1565c0";
  const xs = labels.map((_, i) => i);
  const opts = {
    width: Math.max(240, container.clientWidth),
    height: 220,
    scales: { x: { time: false, range: [-0.5, Math.max(0.5, labels.length - 0.5)] } },
    series: [{ value: (u, i) => labels[i] ?? "" },
      { label: unit, stroke: accent, fill: accent, paths: uPlot.paths.bars({ size: [0.6, 80] }),
        points: { show: false }, value: (u, v) => (v === null || v === undefined ? "–" : `${Math.round(v)} ${unit}`) }],
    axes: [{ stroke: ink, splits: () => xs, values: (u, splits) => splits.map((i) => labels[i] ?? "") },
      { stroke: ink, size: 60, grid: { stroke: "rgba(128,128,128,0.2)" } }],
    legend: { show: false },
  };
  const plot = new uPlot(opts, [xs, values], container);
  new ResizeObserver(() => plot.setSize({ width: Math.max(240, container.clientWidth), height: 220 }))
    .observe(container);
  return plot;
}
