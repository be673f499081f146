// "Render on the server": POST /v1/reconstructions/{id}/render with either the current view (→ PNG) or
// a named camera path (→ MP4 or a zip of PNGs), then show or offer the result.

import { apiFetch, formatBytes, jobUrl } from "../api.js";

const $ = (id) => document.getElementById(id);

// Body of POST .../render: the current view as one camera, or a named path at the server's default
// size (the first input image's).
export function renderRequestBody(viewer, choice, frames, format) {
  if (choice === "view") return { camera: viewer.currentCamera() };
  return { path: { kind: choice, frames, format } };
}

export async function requestServerRender(viewer, jobId) {
  const choice = $("render-path").value;
  const frames = Number($("render-frames").value);
  const format = $("render-format").value;
  const button = $("render-request");
  const out = $("render-result");
  for (const old of out.querySelectorAll("a, img, video")) {
    if (old.href?.startsWith("blob:")) URL.revokeObjectURL(old.href);
    if (old.src?.startsWith("blob:")) URL.revokeObjectURL(old.src);
  }
  out.replaceChildren();
  if (choice !== "view" && !(Number.isInteger(frames) && frames >= 2)) {
    $("render-status").textContent = "Frames must be a whole number of at least 2.";
    return;
  }
  button.disabled = true;
  $("render-status").textContent = "Rendering on the server…";
  const started = performance.now();
  try {
    const response = await apiFetch(`${jobUrl(jobId)}/render`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(renderRequestBody(viewer, choice, frames, format)),
    });
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const ext = blob.type === "image/png" ? "png" : blob.type === "video/mp4" ? "mp4" : "zip";
    $("render-status").textContent = `Done in ${seconds} s (${formatBytes(blob.size)}).`;
    if (ext === "png") {
      const img = document.createElement("img");
      img.alt = "Server render of the current view";
      img.src = url;
      out.append(img);
    } else if (ext === "mp4") {
      const video = document.createElement("video");
      video.src = url;
      video.controls = true;
      video.loop = true;
      video.muted = true;
      out.append(video);
    }
    const link = document.createElement("a");
    link.href = url;
    link.download = `onepass-${jobId.slice(0, 8)}-${choice}.${ext}`;
    link.textContent = `Download the ${ext.toUpperCase()}`;
    out.append(link);
  } catch (err) {
    $("render-status").textContent = `Render failed: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}
