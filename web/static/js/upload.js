// Upload page: pick or drop photos / a zip / a video, set the main options, POST to the API, and follow
// every job live through its Server-Sent Events stream.

import { API, ApiError, TERMINAL, apiFetch, apiJson, detailText, formatBytes } from "./api.js";

const IMAGE_TYPES = new Set(["image/jpeg", "image/png", "image/webp"]);
const IMAGE_EXT = /\.(jpe?g|png|webp)$/i;
const VIDEO_EXT = /\.(mp4|mov|m4v|webm|mkv|avi)$/i;
// Output groups of options.outputs (app/services/pipeline.py OUTPUT_GROUPS; tests/web checks they
// agree). The page always sends its choice; "images" keeps the input photos next to the results so the
// viewer can show them beside the 3D view.
const OUTPUTS = [
  ["images", "Input photos (scene layout)"],
  ["cameras", "Cameras"],
  ["depth", "Depth maps"],
  ["points", "Point cloud"],
  ["splats_ply", "Gaussians (PLY)"],
  ["splats_spz", "Gaussians (SPZ)"],
  ["glb", "GLB scene"],
  ["colmap", "COLMAP model"],
  ["report", "Report"],
];

const $ = (id) => document.getElementById(id);
// Browsers allow ~6 HTTP/1.1 connections per host: stream at most MAX_STREAMS jobs, poll the others.
const MAX_STREAMS = 3;
const POLL_MS = 2000;
const state = { files: [], streams: new Map(), rows: new Map(), jobs: new Map(), pollTimer: null };

function kindOf(file) {
  if (IMAGE_TYPES.has(file.type) || IMAGE_EXT.test(file.name)) return "image";
  if (file.type === "application/zip" || /\.zip$/i.test(file.name)) return "zip";
  if (file.type.startsWith("video/") || VIDEO_EXT.test(file.name)) return "video";
  return "other";
}

// What the selection is, or a sentence saying why it cannot be sent.
function describeSelection(files) {
  if (!files.length) return { ok: false, text: "" };
  const kinds = files.map(kindOf);
  const other = files.filter((_, i) => kinds[i] === "other").map((f) => f.name);
  if (other.length) {
    return { ok: false, text: `Not an image, zip or video: ${other.slice(0, 5).join(", ")}${other.length > 5 ? " …" : ""}` };
  }
  const size = formatBytes(files.reduce((a, f) => a + f.size, 0));
  const n = (k) => kinds.filter((x) => x === k).length;
  if (n("zip") + n("video") > 0 && files.length > 1) {
    return { ok: false, text: "Send either images, or one zip, or one video (not a mix)." };
  }
  if (n("zip")) return { ok: true, kind: "zip", text: `One zip archive (${size})` };
  if (n("video")) return { ok: true, kind: "video", text: `One video (${size})` };
  if (files.length < 2) return { ok: true, kind: "image", text: `1 image (${size}): at least 2 views give a 3D scene` };
  return { ok: true, kind: "image", text: `${files.length} images (${size})` };
}

function setFiles(files) {
  state.files = files;
  const d = describeSelection(files);
  $("selection").hidden = files.length === 0;
  $("selection-summary").textContent = d.text;
  $("selection-summary").className = d.ok ? "" : "error";
  const list = $("selection-list");
  list.replaceChildren(
    ...files.slice(0, 200).map((f) => {
      const li = document.createElement("li");
      li.textContent = `${f.name} (${formatBytes(f.size)})`;
      return li;
    }),
  );
  $("video-fps-label").hidden = d.kind !== "video";
  $("submit").disabled = !d.ok;
  showUploadError("");
}

function showUploadError(text) {
  $("upload-error").hidden = !text;
  $("upload-error").textContent = text;
}

function readOptions() {
  const options = {};
  const preset = $("opt-preset").value.trim();
  if (preset) options.preset = preset;
  const num = (id) => ($(id).value.trim() === "" ? null : Number($(id).value));
  const anchors = num("opt-max-anchors");
  if (anchors !== null) options.max_anchors = anchors;
  const resolution = num("opt-resolution");
  if (resolution !== null) options.resolution = resolution;
  const fps = num("opt-video-fps");
  if (fps !== null && !$("video-fps-label").hidden) options.video_fps = fps;
  if ($("opt-refine").checked) options.refine = true;
  options.outputs = [...document.querySelectorAll("#outputs input")].filter((b) => b.checked).map((b) => b.value);
  return options;
}

// XMLHttpRequest rather than fetch: it reports upload progress.
function postUpload(form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", API);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress(e.loaded / e.total));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
      else reject(new ApiError(xhr.status, `${detailText(xhr.response?.detail, xhr.status)} (HTTP ${xhr.status})`));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "the upload failed: cannot reach the server")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "the upload was aborted")));
    xhr.send(form);
  });
}

async function submit(event) {
  event.preventDefault();
  const d = describeSelection(state.files);
  if (!d.ok) return;
  const form = new FormData();
  for (const f of state.files) form.append("files", f, f.name);
  form.append("options", JSON.stringify(readOptions()));
  $("submit").disabled = true;
  $("upload-progress").hidden = false;
  $("upload-progress").value = 0;
  $("upload-status").textContent = "Uploading…";
  showUploadError("");
  try {
    const job = await postUpload(form, (p) => {
      $("upload-progress").value = p;
      $("upload-status").textContent = p < 1 ? `Uploading… ${Math.round(p * 100)} %` : "Checking the files…";
    });
    $("upload-status").textContent = `Sent ${job.num_images} images.`;
    setFiles([]);
    $("file-input").value = "";
    upsertJob(job, true);
  } catch (err) {
    $("upload-status").textContent = "";
    showUploadError(`Upload refused: ${err.message}`);
    $("submit").disabled = false;
  } finally {
    $("upload-progress").hidden = true;
  }
}

// ---- job list --------------------------------------------------------------------------------------

function jobName(job) {
  if (job.scene) return job.scene;
  const names = job.image_names ?? [];
  if (names.length === 0) return job.id;
  return names.length === 1 ? names[0] : `${names[0]} … ${names.at(-1)}`;
}

function rowFor(job) {
  let row = state.rows.get(job.id);
  if (row) return row;
  const li = document.createElement("li");
  li.className = "job";
  li.dataset.jobId = job.id;
  li.innerHTML = `
    <div><span class="job-name"></span><span class="pill"></span>
      <div class="job-meta"></div></div>
    <div class="job-actions"></div>
    <progress max="1" value="0"></progress>
    <p class="job-error error" role="alert" hidden></p>`;
  row = {
    li,
    name: li.querySelector(".job-name"),
    pill: li.querySelector(".pill"),
    meta: li.querySelector(".job-meta"),
    actions: li.querySelector(".job-actions"),
    progress: li.querySelector("progress"),
    error: li.querySelector(".job-error"),
  };
  state.rows.set(job.id, row);
  return row;
}

function button(label, cls, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener("click", onClick);
  return b;
}

function renderJob(job) {
  const row = rowFor(job);
  row.li.dataset.status = job.status;
  row.name.textContent = jobName(job);
  row.pill.textContent = job.status;
  row.pill.className = `pill ${job.status}`;
  const parts = [`${job.num_images ?? job.image_names?.length ?? "?"} images`];
  if (!TERMINAL.has(job.status) && job.stage) parts.push(job.stage);
  if (job.timings?.total) parts.push(`${job.timings.total.toFixed(1)} s`);
  parts.push(new Date(job.created_at).toLocaleString());
  row.meta.textContent = parts.join(" · ");
  row.progress.value = job.status === "succeeded" ? 1 : job.progress ?? 0;
  row.progress.hidden = TERMINAL.has(job.status);
  row.error.hidden = !job.error;
  row.error.textContent = job.error ? `Failed: ${job.error}` : "";
  const actions = [];
  if (job.status === "succeeded") {
    const a = document.createElement("a");
    a.href = `/viewer/${encodeURIComponent(job.id)}`;
    a.textContent = "Open viewer";
    a.className = "open-viewer";
    actions.push(a);
  }
  if (!TERMINAL.has(job.status)) actions.push(button("Cancel", "secondary", () => removeJob(job, "cancel")));
  else actions.push(button("Delete", "danger", () => removeJob(job, "delete")));
  row.actions.replaceChildren(...actions);
}

function upsertJob(job, prepend = false) {
  const isNew = !state.rows.has(job.id);
  state.jobs.set(job.id, job);
  renderJob(job);
  const li = state.rows.get(job.id).li;
  if (isNew) {
    if (prepend) $("jobs").prepend(li);
    else $("jobs").append(li);
  }
  $("jobs-empty").hidden = state.rows.size > 0;
  if (TERMINAL.has(job.status)) closeStream(job.id);
  else follow(job);
}

function closeStream(id) {
  state.streams.get(id)?.close();
  state.streams.delete(id);
}

// One EventSource per unfinished job: `progress` events carry the job JSON, `done` ends the stream,
// `deleted` says the job is gone.
function follow(job) {
  if (state.streams.has(job.id)) return;
  if (state.streams.size >= MAX_STREAMS) {
    schedulePoll();
    return;
  }
  const source = new EventSource(job.links?.events ?? `${API}/${job.id}/events`);
  state.streams.set(job.id, source);
  source.addEventListener("progress", (e) => upsertJob(JSON.parse(e.data)));
  source.addEventListener("done", () => refreshJob(job.id));
  source.addEventListener("deleted", () => dropJob(job.id));
  source.addEventListener("error", () => {
    // EventSource reconnects by itself while the server is reachable; once the stream is closed
    // for good, read the final state instead.
    if (source.readyState === EventSource.CLOSED) refreshJob(job.id);
  });
}

async function refreshJob(id) {
  closeStream(id);
  try {
    upsertJob(await apiJson(`${API}/${id}`));
  } catch (err) {
    if (err.status === 404) return dropJob(id);
    const row = state.rows.get(id);
    if (row) {
      row.error.hidden = false;
      row.error.textContent = `Lost track of this job: ${err.message}`;
    }
  }
}

// Jobs without a stream (over MAX_STREAMS) are refreshed every POLL_MS until they end or get one.
function schedulePoll() {
  if (state.pollTimer !== null) return;
  state.pollTimer = setTimeout(async () => {
    state.pollTimer = null;
    const waiting = [...state.jobs.values()].filter((j) => !TERMINAL.has(j.status) && !state.streams.has(j.id));
    for (const j of waiting) await refreshJob(j.id);
  }, POLL_MS);
}

function dropJob(id) {
  state.jobs.delete(id);
  closeStream(id);
  state.rows.get(id)?.li.remove();
  state.rows.delete(id);
  $("jobs-empty").hidden = state.rows.size > 0;
}

async function removeJob(job, what) {
  if (what === "delete" && !window.confirm(`Delete ${jobName(job)} and all its files?`)) return;
  try {
    if (what === "delete") {
      await apiFetch(`${API}/${job.id}`, { method: "DELETE" });
      dropJob(job.id);
    } else {
      upsertJob(await apiJson(`${API}/${job.id}/cancel`, { method: "POST" }));
    }
  } catch (err) {
    const row = state.rows.get(job.id);
    row.error.hidden = false;
    row.error.textContent = `Could not ${what}: ${err.message}`;
  }
}

async function loadJobs() {
  $("jobs-error").hidden = true;
  try {
    const page = await apiJson(`${API}?limit=50`);
    for (const job of page.items) upsertJob(job);
    $("jobs-empty").hidden = state.rows.size > 0;
  } catch (err) {
    $("jobs-error").hidden = false;
    $("jobs-error").textContent = `Could not list the reconstructions: ${err.message}`;
  }
}

// ---- wiring ----------------------------------------------------------------------------------------

function setup() {
  $("outputs").replaceChildren(
    ...OUTPUTS.map(([value, label]) => {
      const l = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = value;
      // The service keeps every job's inputs (the viewer reads them); "images" only copies them.
      box.checked = value !== "images";
      l.append(box, ` ${label}`);
      return l;
    }),
  );
  const zone = $("dropzone");
  const input = $("file-input");
  zone.addEventListener("click", (e) => {
    if (e.target !== input && e.target.tagName !== "LABEL") input.click();
  });
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      input.click();
    }
  });
  input.addEventListener("change", () => setFiles([...input.files]));
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => {
      e.preventDefault();
      zone.classList.add("dragover");
    });
  }
  for (const type of ["dragleave", "drop"]) zone.addEventListener(type, () => zone.classList.remove("dragover"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    setFiles([...e.dataTransfer.files]);
  });
  $("clear-selection").addEventListener("click", () => {
    input.value = "";
    setFiles([]);
  });
  $("upload-form").addEventListener("submit", submit);
  $("refresh").addEventListener("click", loadJobs);
  loadJobs();
}

setup();
