// Previews: thumbnails of jobs' newest frames. The image is /jobs/<id>/preview?v=<version>
// (jobs.preview); which jobs have one comes from /jobs/previews?ids=… (jobs.previews) and then
// from the `previews` event stream, so an image changes as frames land.
import { el } from "./lib.js";

export const previewUrl = (p) => `/jobs/${p.job_id}/preview?v=${p.version}`;

/** job id → preview view, for the given jobs (empty on failure: previews are extras). */
export async function previewsOf(ids) {
  const known = new Map();
  if (!ids.length) return known;
  try {
    const response = await fetch(`/jobs/previews?ids=${ids.join(",")}`, { credentials: "same-origin" });
    if (response.ok) for (const p of (await response.json()).previews) known.set(p.job_id, p);
  } catch { /* the banner says when the dashboard is unreachable */ }
  return known;
}

export function caption(p) {
  return `task ${p.task_id}${p.frame === null ? "" : `, frame ${p.frame}`} · ${p.width}×${p.height}`;
}

/** An <img> of the preview, or an empty placeholder while there is none. */
export function thumb(p, cls = "thumb") {
  if (!p) return el("span", { class: `${cls} none` });
  return el("img", { src: previewUrl(p), class: cls, alt: `job ${p.job_id}: ${caption(p)}`,
    width: p.width, height: p.height, loading: "lazy", dataset: { version: p.version } });
}

/** Show preview `p` in a <figure> with an <img> and a <figcaption> (unhidden on the first). */
export function showIn(figure, p) {
  const img = figure.querySelector("img");
  if (!p || Number(img.dataset.version || 0) >= p.version) return; // events may pass a fetch
  img.src = previewUrl(p);
  img.width = p.width; img.height = p.height;
  img.alt = `job ${p.job_id}: ${caption(p)}`;
  img.dataset.version = p.version;
  const label = figure.querySelector("figcaption");
  if (label) label.textContent = caption(p);
  figure.hidden = false;
}
