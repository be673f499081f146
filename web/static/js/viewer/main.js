// Viewer page: load a finished job's artifacts and show them with Spark on three.js.
//
// Flow: job JSON → artifact list → cameras.json → splats (splats.spz, else splats.ply) → first input
// camera view. The point cloud (points.ply) loads on first use. `document.body.dataset.ready` becomes
// "true" once the splats are drawn from the first camera ("error" with the overlay text on failure).

import * as THREE from "three";
import { SplatMesh } from "@sparkjsdev/spark";

import { apiFetch, apiJson, artifactUrl, formatBytes, inputUrl, jobUrl } from "../api.js";
import { cameraLayout, openCvWorldToCamera, parseCameras } from "./cameras.js";
import { Frustums } from "./frustums.js";
import { parsePointPly } from "./ply.js";
import { PointCloud } from "./points.js";
import { Stage } from "./stage.js";
import { requestServerRender } from "./render_request.js";
import { medianDepth, robustExtent, sampleCentres } from "./scene_stats.js";

const $ = (id) => document.getElementById(id);
const jobId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() ?? "");

const viewer = {
  job: null,
  artifacts: new Map(), // name -> {name, size, url, media_type}
  frames: [],
  layout: null,
  stage: null,
  splats: null,
  points: null,
  frustums: null,
  samples: null, // a sample of splat centres, world coordinates [3 * n]
  centre: null, // their per-axis median
  active: -1,
};
// Read by the browser tests (and handy in the console): the state and a few actions.
window.onepassViewer = viewer;

function status(text) {
  $("status-line").textContent = text;
}

function fail(message) {
  const overlay = $("overlay");
  overlay.hidden = false;
  overlay.classList.add("error");
  overlay.textContent = message;
  status("");
  document.body.dataset.ready = "error";
}

// The input photos come from the job's stored inputs (GET .../inputs/<name>), kept for every job.
function inputImageUrl(frame) {
  return inputUrl(jobId, frame.image);
}

async function fetchBytes(name, label) {
  const response = await apiFetch(viewer.artifacts.get(name)?.url ?? artifactUrl(jobId, name));
  const total = Number(response.headers.get("Content-Length")) || viewer.artifacts.get(name)?.size || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    status(`Loading ${label}… ${formatBytes(got)}${total ? ` of ${formatBytes(total)}` : ""}`);
  }
  const bytes = new Uint8Array(got);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  return bytes;
}

// Where orbiting should pivot when at a camera: the median depth of the splats in front of it.
function focusDistance(cameraToWorld) {
  const pos = new THREE.Vector3().setFromMatrixPosition(cameraToWorld);
  const forward = new THREE.Vector3(0, 0, -1).transformDirection(cameraToWorld);
  const d = viewer.samples ? medianDepth(viewer.samples, pos, forward) : NaN;
  if (Number.isFinite(d) && d > 0) return d;
  const toCentre = (viewer.centre ?? viewer.layout.mean).clone().sub(pos).dot(forward);
  return toCentre > 0 ? toCentre : viewer.layout.scale;
}

async function goToCamera(index, ms) {
  const frame = viewer.frames[index];
  viewer.active = index;
  viewer.frustums.setActive(index, true);
  for (const b of document.querySelectorAll("#camera-list button")) {
    b.classList.toggle("active", Number(b.dataset.index) === index);
  }
  viewer.stage.camera.setIntrinsics(frame.K, frame.width, frame.height);
  await viewer.stage.flyTo(frame.cameraToWorld, focusDistance(frame.cameraToWorld), ms);
  showCompare(frame);
}

function showCompare(frame) {
  $("compare").hidden = false;
  $("compare-title").textContent = `Input photo ${frame.index + 1}: ${frame.image}`;
  const img = $("compare-image");
  const source = POSE_SOURCE_TEXT[frame.poseSource];
  const lens = `${frame.width}×${frame.height} px, fx ${frame.K[0][0].toFixed(1)} px${frame.anchor ? ", anchor view" : ""}${source ? `, ${source}` : ""}`;
  $("compare-caption").textContent = `${lens}. The 3D view is set to this camera's lens and pose.`;
  img.hidden = false;
  img.onerror = () => {
    img.hidden = true;
    $("compare-caption").textContent = `${lens}. The input photo could not be loaded from the server.`;
    viewer.stage.resize();
  };
  img.src = inputImageUrl(frame);
  viewer.stage.resize();
}

// How each camera's pose was obtained (cameras.json "pose_source"), as the photo caption says it; the
// camera list tags the refined views and the one they are relative to.
const POSE_SOURCE_TEXT = {
  predicted: "pose predicted by the network",
  refined: "pose refined by bundle adjustment",
  reference: "reference pose of the refinement",
  given: "pose given with the upload",
};

function buildCameraList() {
  $("camera-list").replaceChildren(
    ...viewer.frames.map((f) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.index = String(f.index);
      b.textContent = `${f.index + 1}. ${f.image}`;
      if (f.anchor) {
        const tag = document.createElement("span");
        tag.className = "anchor-tag";
        tag.textContent = "anchor";
        b.append(tag);
      }
      if (f.poseSource === "refined" || f.poseSource === "reference") {
        const tag = document.createElement("span");
        tag.className = "pose-tag";
        tag.textContent = f.poseSource;
        tag.title = POSE_SOURCE_TEXT[f.poseSource];
        b.append(tag);
      }
      b.addEventListener("click", () => goToCamera(f.index));
      li.append(b);
      return li;
    }),
  );
}

function downloadItem(a) {
  const li = document.createElement("li");
  const link = document.createElement("a");
  link.href = a.url;
  link.download = a.name.split("/").pop();
  link.textContent = a.name.split("/").pop();
  link.title = a.name;
  const size = document.createElement("span");
  size.className = "size";
  size.textContent = formatBytes(a.size);
  li.append(link, size);
  return li;
}

// Top-level files first, then one collapsed group per folder (depth/, images/, colmap/...).
function buildDownloads() {
  const groups = new Map();
  const top = [];
  for (const name of [...viewer.artifacts.keys()].sort()) {
    const a = viewer.artifacts.get(name);
    const slash = name.indexOf("/");
    if (slash < 0) top.push(downloadItem(a));
    else {
      const folder = name.slice(0, slash);
      if (!groups.has(folder)) groups.set(folder, []);
      groups.get(folder).push(downloadItem(a));
    }
  }
  const folders = [...groups].map(([folder, items]) => {
    const li = document.createElement("li");
    li.className = "folder";
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = `${folder}/ (${items.length} files)`;
    const ul = document.createElement("ul");
    ul.className = "downloads";
    ul.append(...items);
    details.append(summary, ul);
    li.append(details);
    return li;
  });
  $("downloads").replaceChildren(...top, ...folders);
}

async function showPoints(visible) {
  $("points-options").hidden = !visible;
  if (visible && !viewer.points) {
    if (!viewer.artifacts.has("points.ply")) {
      $("confidence-hint").textContent = "This reconstruction has no points.ply.";
      return;
    }
    try {
      const parsed = parsePointPly((await fetchBytes("points.ply", "the point cloud")).buffer, "points.ply");
      viewer.points = new PointCloud(parsed);
      viewer.stage.scene.add(viewer.points.object);
      $("confidence").disabled = !viewer.points.hasConfidence;
      updateConfidence();
      status(`${parsed.count.toLocaleString()} points`);
    } catch (err) {
      $("confidence-hint").textContent = `Could not load points.ply: ${err.message}`;
      return;
    }
  }
  if (viewer.points) viewer.points.object.visible = visible;
  if (viewer.splats) viewer.splats.visible = !visible;
  viewer.stage.requestRender();
}

function updateConfidence() {
  const pct = Number($("confidence").value);
  $("confidence-out").textContent = `${pct} %`;
  if (!viewer.points) return;
  const { shown, threshold } = viewer.points.setHiddenPercent(pct);
  $("confidence-hint").textContent = viewer.points.hasConfidence
    ? `${shown.toLocaleString()} of ${viewer.points.count.toLocaleString()} points, confidence ≥ ${threshold.toPrecision(3)}`
    : "points.ply carries no confidence values: every point is shown.";
  viewer.stage.requestRender();
}

async function screenshot() {
  const blob = await viewer.stage.snapshot();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `onepass-${jobId.slice(0, 8)}-view.png`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function wireControls() {
  // Keys typed in the panel (numbers, selects) must not move the camera in fly mode.
  document.querySelector(".panel").addEventListener("keydown", (e) => e.stopPropagation());
  for (const r of document.querySelectorAll("input[name=mode]")) {
    r.addEventListener("change", () => showPoints(r.value === "points" && r.checked));
  }
  for (const r of document.querySelectorAll("input[name=nav]")) {
    r.addEventListener("change", () => {
      if (!r.checked) return;
      viewer.stage.setNavigation(r.value);
      $("nav-hint").textContent =
        r.value === "fly"
          ? "W/A/S/D or arrows to move, Q/E down/up, drag to look; Shift is faster."
          : "Drag to orbit, right-drag or shift-drag to pan, wheel to zoom.";
    });
  }
  $("confidence").addEventListener("input", updateConfidence);
  $("point-size").addEventListener("input", () => {
    const px = Number($("point-size").value);
    $("point-size-out").textContent = `${px} px`;
    viewer.points?.setPointSize(px);
    viewer.stage.requestRender();
  });
  $("show-frustums").addEventListener("change", (e) => {
    viewer.frustums.setVisible(e.target.checked);
    viewer.stage.requestRender();
  });
  $("reset-view").addEventListener("click", () => goToCamera(0));
  $("compare-close").addEventListener("click", () => {
    $("compare").hidden = true;
    viewer.stage.resize();
  });
  $("screenshot").addEventListener("click", screenshot);
  $("render-path").addEventListener("change", () => {
    $("render-path-options").hidden = $("render-path").value === "view";
  });
  $("render-request").addEventListener("click", () => requestServerRender(viewer, jobId));

  // Click on an image plane: fly to that camera (a drag that moved the view is not a click).
  const canvas = viewer.stage.canvas;
  let down = null;
  canvas.addEventListener("pointerdown", (e) => (down = { x: e.clientX, y: e.clientY }));
  canvas.addEventListener("pointerup", (e) => {
    if (!down || Math.hypot(e.clientX - down.x, e.clientY - down.y) > 4) return;
    const rect = canvas.getBoundingClientRect();
    const ndc = new THREE.Vector2(
      ((e.clientX - rect.left) / rect.width) * 2 - 1,
      -((e.clientY - rect.top) / rect.height) * 2 + 1,
    );
    const index = viewer.frustums.pick(ndc, viewer.stage.camera);
    if (index >= 0) goToCamera(index);
  });
}

// The current view as an OpenCV camera (for a server-side render of exactly what is on screen).
viewer.currentCamera = () => {
  const cam = viewer.stage.camera;
  const { width, height } = cam.viewSize;
  return {
    K: cam.viewIntrinsics(),
    world_to_camera: openCvWorldToCamera(cam.matrixWorld),
    width: Math.round(width),
    height: Math.round(height),
  };
};
viewer.goToCamera = goToCamera;
// Resolves once the view has settled: no flight, Spark done sorting for this view, and the frame that
// shows the sorted splats drawn (idle over two animation frames in a row).
viewer.settled = async () => {
  let calm = 0;
  while (calm < 2) {
    await new Promise((r) => requestAnimationFrame(r));
    calm = viewer.stage.idle ? calm + 1 : 0;
  }
};

async function main() {
  if (!jobId) return fail("No reconstruction id in the address.");
  $("job-title").textContent = `Reconstruction ${jobId.slice(0, 8)}`;
  try {
    status("Loading the job…");
    viewer.job = await apiJson(jobUrl(jobId));
    if (viewer.job.status === "queued" || viewer.job.status === "running") {
      // Wait for it: the page reloads itself when the job ends.
      const source = new EventSource(`${jobUrl(jobId)}/events`);
      source.addEventListener("progress", (e) => {
        const job = JSON.parse(e.data);
        $("overlay").textContent = `This reconstruction is ${job.status} (${job.stage}, ${Math.round(job.progress * 100)} %).`;
      });
      source.addEventListener("done", () => location.reload());
      source.addEventListener("deleted", () => location.reload());
      $("overlay").hidden = false;
      $("overlay").textContent = `This reconstruction is ${viewer.job.status}; the view opens when it is done.`;
      return;
    }
    if (viewer.job.status !== "succeeded") {
      const why = viewer.job.error ? `: ${viewer.job.error}` : "";
      return fail(`This reconstruction is ${viewer.job.status}${why}.\nThe viewer opens finished reconstructions.`);
    }
    const listing = await apiJson(`${jobUrl(jobId)}/artifacts`);
    for (const a of listing.items) viewer.artifacts.set(a.name, a);
    buildDownloads();
    if (!viewer.artifacts.has("cameras.json")) return fail("This reconstruction has no cameras.json.");
    const splatName = ["splats.spz", "splats.ply"].find((n) => viewer.artifacts.has(n));
    if (!splatName) return fail("This reconstruction has no Gaussians (splats.spz or splats.ply).");

    viewer.frames = parseCameras(await apiJson(viewer.artifacts.get("cameras.json").url));
    viewer.layout = cameraLayout(viewer.frames);
    const stage = new Stage($("canvas"), $("stage"));
    viewer.stage = stage;
    // Orbit around the first camera's up direction (OpenCV -y).
    stage.setUp(new THREE.Vector3(0, 1, 0).transformDirection(viewer.frames[0].cameraToWorld));

    const bytes = await fetchBytes(splatName, "the Gaussians");
    status("Preparing the Gaussians…");
    viewer.splats = new SplatMesh({ fileBytes: bytes, fileName: splatName });
    await viewer.splats.initialized;
    // SPZ stores the RUB frame (renderer.io.web_formats flips our OpenCV y and z on write) and Spark
    // reads it as is: turn it back by half a turn about x. The PLY holds OpenCV world coordinates.
    if (splatName.endsWith(".spz")) viewer.splats.quaternion.set(1, 0, 0, 0);
    viewer.samples = sampleCentres(viewer.splats);
    const { centre, radius } = robustExtent(viewer.samples);
    viewer.centre = centre;
    // Fly speed and clipping follow the larger of the camera spread and the scene's size; frustums
    // follow the camera spacing, kept between a tenth of the scene's size and all of it.
    const radiusOk = Number.isFinite(radius) && radius > 0;
    stage.setScale(radiusOk ? Math.max(viewer.layout.scale, radius) : viewer.layout.scale);
    const spacing = radiusOk
      ? THREE.MathUtils.clamp(viewer.layout.scale, 0.1 * radius, radius)
      : viewer.layout.scale;
    viewer.frustums = new Frustums(viewer.frames, 0.15 * spacing, inputImageUrl);
    viewer.frustums.onChange = () => stage.requestRender();
    // Leaving an input camera's pose shows its frustum again.
    stage.onUserMove = () => {
      if (viewer.frustums.items[viewer.active]?.holder.visible === false) {
        viewer.frustums.setActive(viewer.active, false);
      }
    };
    stage.scene.add(viewer.frustums.group);
    buildCameraList();
    wireControls();
    stage.scene.add(viewer.splats);
    await goToCamera(0, 0);
    await viewer.settled();
    document.body.dataset.ready = "true";
    const count = viewer.splats.packedSplats?.numSplats ?? viewer.splats.splats?.getNumSplats();
    status(`${count?.toLocaleString() ?? "?"} Gaussians · ${viewer.frames.length} cameras`);
  } catch (err) {
    console.warn(err);
    fail(`Could not show this reconstruction: ${err.message}`);
  }
}

main();
