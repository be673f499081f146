// Run a function of the viewer's JS modules under Node on JSON input, for cross-checks from pytest.
//
//   node run_viewer_module.mjs WEB_DIR TASK < input.json > output.json
//
// Tasks:
//   project   {cameras: [{K, world_to_camera, width, height, view_width, view_height}], points: [[x,y,z]]}
//             -> {uv: [[[u, v], ...] per camera]} in pixels of each camera's viewport, through three.js
//   roundtrip {cameras: [{world_to_camera}]} -> {world_to_camera: [...]} via three.js and back
//   ply       {path} -> parsed point cloud (arrays as lists)
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [webDir, task] = process.argv.slice(2);
const load = (rel) => import(pathToFileURL(join(webDir, "static", "js", "viewer", rel)).href);
const input = JSON.parse(readFileSync(0, "utf8"));

async function project() {
  const THREE = await import(pathToFileURL(join(webDir, "node_modules", "three", "build", "three.module.js")).href);
  const { IntrinsicsCamera, threeCameraToWorld } = await load("cameras.js");
  const uv = input.cameras.map((c) => {
    const cam = new IntrinsicsCamera(50, 1, 0.01, 1000);
    const vw = c.view_width ?? c.width;
    const vh = c.view_height ?? c.height;
    cam.setViewport(vw, vh);
    cam.setIntrinsics(c.K, c.width, c.height);
    threeCameraToWorld(c.world_to_camera).decompose(cam.position, cam.quaternion, cam.scale);
    cam.updateMatrixWorld(true);
    return input.points.map(([x, y, z]) => {
      const p = new THREE.Vector3(x, y, z).project(cam); // NDC
      return [((p.x + 1) / 2) * vw, ((1 - p.y) / 2) * vh];
    });
  });
  return { uv };
}

async function roundtrip() {
  const { threeCameraToWorld, openCvWorldToCamera } = await load("cameras.js");
  return { world_to_camera: input.cameras.map((c) => openCvWorldToCamera(threeCameraToWorld(c.world_to_camera))) };
}

async function ply() {
  const { parsePointPly } = await load("ply.js");
  const bytes = readFileSync(input.path);
  try {
    const r = parsePointPly(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), input.name);
    return {
      count: r.count,
      positions: Array.from(r.positions),
      colors: Array.from(r.colors),
      confidence: r.confidence ? Array.from(r.confidence) : null,
      confidenceName: r.confidenceName,
    };
  } catch (err) {
    return { error: err.message };
  }
}

const tasks = { project, roundtrip, ply };
if (!tasks[task]) {
  console.error(`unknown task '${task}'; expected one of ${Object.keys(tasks).join(", ")}`);
  process.exit(2);
}
process.stdout.write(JSON.stringify(await tasks[task]()));
