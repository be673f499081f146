// Camera conventions between onepass files and three.js.
//
// onepass (renderer/conventions.py): OpenCV axes (x right, y down, z forward), `world_to_camera` 4x4,
// `K` in pixels of the image with pixel centres at +0.5, so the image spans u in [0, W], v in [0, H].
// three.js: camera looks down -z with y up, `matrixWorld` is camera-to-world.
// Hence camera_to_world_three = inverse(world_to_camera) * diag(1, -1, -1, 1).

import * as THREE from "three";

const FLIP_YZ = new THREE.Matrix4().makeScale(1, -1, -1);

// Row-major nested array [[...4], x4] → THREE.Matrix4 (whose .set() takes row-major arguments).
export function matrix4FromRows(rows) {
  if (!Array.isArray(rows) || rows.length !== 4 || rows.some((r) => !Array.isArray(r) || r.length !== 4)) {
    throw new Error(`expected a 4x4 matrix, got ${JSON.stringify(rows)}`);
  }
  return new THREE.Matrix4().set(...rows.flat().map(Number));
}

export function rowsFromMatrix4(m) {
  const e = m.elements; // column-major
  return [0, 1, 2, 3].map((r) => [0, 1, 2, 3].map((c) => e[c * 4 + r]));
}

// OpenCV world_to_camera [4][4] → three.js camera-to-world Matrix4.
export function threeCameraToWorld(worldToCamera) {
  const w2c = matrix4FromRows(worldToCamera);
  return w2c.clone().invert().multiply(FLIP_YZ);
}

// three.js camera matrixWorld → OpenCV world_to_camera rows (the inverse of threeCameraToWorld).
export function openCvWorldToCamera(matrixWorld) {
  const c2wCv = matrixWorld.clone().multiply(FLIP_YZ);
  return rowsFromMatrix4(c2wCv.invert());
}

// Place an image of size imageW x imageH, taken with K, centred and as large as fits in a viewW x viewH
// viewport (letterboxed). Returns the K of the whole viewport: the input photo then lines up with the
// middle of the canvas, and the canvas shows some more of the scene around it.
export function fitIntrinsics(K, imageW, imageH, viewW, viewH) {
  const s = Math.min(viewW / imageW, viewH / imageH);
  const ox = (viewW - s * imageW) / 2;
  const oy = (viewH - s * imageH) / 2;
  return [
    [s * K[0][0], s * K[0][1], ox + s * K[0][2]],
    [0, s * K[1][1], oy + s * K[1][2]],
    [0, 0, 1],
  ];
}

// OpenGL projection matrix for a pinhole camera K over a width x height viewport (pixel edges at 0 and W).
// Derivation: u = fx x/z + cx with x = X, z = -Z (three camera space), ndc_x = 2u/W - 1, w_clip = -Z.
export function projectionFromK(K, width, height, near, far) {
  const [fx, skew, cx] = K[0];
  const [, fy, cy] = K[1];
  return new THREE.Matrix4().set(
    (2 * fx) / width, (-2 * skew) / width, 1 - (2 * cx) / width, 0,
    0, (2 * fy) / height, (2 * cy) / height - 1, 0,
    0, 0, -(far + near) / (far - near), (-2 * far * near) / (far - near),
    0, 0, -1, 0,
  );
}

// The K of a symmetric three.js perspective camera over a width x height viewport.
export function intrinsicsFromFov(fovDeg, width, height) {
  const f = height / 2 / Math.tan(THREE.MathUtils.degToRad(fovDeg) / 2);
  return [
    [f, 0, width / 2],
    [0, f, height / 2],
    [0, 0, 1],
  ];
}

// A PerspectiveCamera whose projection comes from pinhole intrinsics when they are set (principal point
// and fx != fy included). `fov` and `aspect` are kept consistent so code that only reads them (orbit
// panning, Spark's level of detail) sees the right values.
export class IntrinsicsCamera extends THREE.PerspectiveCamera {
  constructor(fov, aspect, near, far) {
    super(fov, aspect, near, far);
    this.sourceK = null; // {K, width, height} of the image whose lens we imitate, or null
    this.viewSize = { width: 1, height: 1 };
  }

  setViewport(width, height) {
    this.viewSize = { width: Math.max(1, width), height: Math.max(1, height) };
    this.aspect = this.viewSize.width / this.viewSize.height;
    this.updateProjectionMatrix();
  }

  setIntrinsics(K, width, height) {
    this.sourceK = K ? { K, width, height } : null;
    this.updateProjectionMatrix();
  }

  // K of the current viewport (what a server-side render of this view needs).
  viewIntrinsics() {
    const { width, height } = this.viewSize;
    if (!this.sourceK) return intrinsicsFromFov(this.fov, width, height);
    const { K, width: w, height: h } = this.sourceK;
    return fitIntrinsics(K, w, h, width, height);
  }

  updateProjectionMatrix() {
    if (!this.sourceK || !this.viewSize) {
      super.updateProjectionMatrix();
      return;
    }
    const { width, height } = this.viewSize;
    const Kv = this.viewIntrinsics();
    this.fov = THREE.MathUtils.radToDeg(2 * Math.atan(height / 2 / Kv[1][1]));
    this.aspect = width / height;
    this.projectionMatrix.copy(projectionFromK(Kv, width, height, this.near, this.far));
    this.projectionMatrixInverse.copy(this.projectionMatrix).invert();
  }
}

// The values of a frame's optional "pose_source" (how its pose was obtained); anything else is ignored.
const POSE_SOURCES = ["predicted", "refined", "reference", "given"];

// Check one cameras.json document and return its frames; errors name the frame and the field.
export function parseCameras(doc) {
  if (!doc || !Array.isArray(doc.frames) || doc.frames.length === 0) {
    throw new Error("cameras.json: 'frames' must be a non-empty list");
  }
  if ((doc.convention ?? "opencv") !== "opencv") {
    throw new Error(`cameras.json: convention '${doc.convention}' is not supported (expected 'opencv')`);
  }
  return doc.frames.map((f, i) => {
    const where = `cameras.json frame ${i} (${f.image ?? "no image name"})`;
    for (const key of ["image", "width", "height", "K", "world_to_camera"]) {
      if (f[key] === undefined) throw new Error(`${where}: missing the field '${key}'`);
    }
    const K = f.K;
    if (!Array.isArray(K) || K.length !== 3 || K.some((r) => !Array.isArray(r) || r.length !== 3)) {
      throw new Error(`${where}: K must be 3x3`);
    }
    const flat = [...K.flat(), ...f.world_to_camera.flat()];
    if (!flat.every(Number.isFinite)) throw new Error(`${where}: K or world_to_camera is not finite`);
    return {
      index: i,
      image: String(f.image),
      width: Number(f.width),
      height: Number(f.height),
      K,
      worldToCamera: f.world_to_camera,
      anchor: Boolean(f.anchor),
      poseSource: POSE_SOURCES.includes(f.pose_source) ? f.pose_source : null,
      cameraToWorld: threeCameraToWorld(f.world_to_camera),
    };
  });
}

// Camera centres and a length scale for the scene (median distance of the centres to their mean, or the
// median spacing between consecutive cameras when they coincide), used to size frustums and fly speeds.
export function cameraLayout(frames) {
  const centres = frames.map((f) => new THREE.Vector3().setFromMatrixPosition(f.cameraToWorld));
  const mean = centres.reduce((a, c) => a.add(c), new THREE.Vector3()).divideScalar(centres.length);
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? s[Math.floor(s.length / 2)] : 0;
  };
  let scale = median(centres.map((c) => c.distanceTo(mean)));
  if (!(scale > 1e-6)) scale = median(centres.slice(1).map((c, i) => c.distanceTo(centres[i])));
  if (!(scale > 1e-6)) scale = 1;
  return { centres, mean, scale };
}

// Corners of the image plane at distance `depth` in front of the camera, in three.js camera space,
// in the order top-left, top-right, bottom-right, bottom-left of the image.
export function frustumCorners(K, width, height, depth) {
  const [fx, , cx] = K[0];
  const [, fy, cy] = K[1];
  return [
    [0, 0],
    [width, 0],
    [width, height],
    [0, height],
  ].map(([u, v]) => new THREE.Vector3(((u - cx) / fx) * depth, -((v - cy) / fy) * depth, -depth));
}
