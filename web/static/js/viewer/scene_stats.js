// Robust size and placement of a splat scene from a sample of its centres (medians, so stray Gaussians
// far away do not decide where the orbit pivots or how fast one flies).

import * as THREE from "three";

const MAX_SAMPLES = 20000;

function median(values) {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  return s[Math.floor(s.length / 2)];
}

// Up to MAX_SAMPLES splat centres in world coordinates, [3 * n] floats.
export function sampleCentres(mesh) {
  const total = mesh.packedSplats?.numSplats ?? mesh.splats?.getNumSplats() ?? 0;
  const step = Math.max(1, Math.ceil(total / MAX_SAMPLES));
  const out = [];
  const p = new THREE.Vector3();
  mesh.updateMatrixWorld(true);
  mesh.forEachSplat((index, center) => {
    if (index % step !== 0) return;
    p.copy(center).applyMatrix4(mesh.matrixWorld);
    if (Number.isFinite(p.x) && Number.isFinite(p.y) && Number.isFinite(p.z)) out.push(p.x, p.y, p.z);
  });
  return Float32Array.from(out);
}

// Per-axis median point and the median distance of the samples to it.
export function robustExtent(samples) {
  const n = samples.length / 3;
  const axis = (k) => median(Array.from({ length: n }, (_, i) => samples[3 * i + k]));
  const centre = new THREE.Vector3(axis(0), axis(1), axis(2));
  const d = Array.from({ length: n }, (_, i) =>
    Math.hypot(samples[3 * i] - centre.x, samples[3 * i + 1] - centre.y, samples[3 * i + 2] - centre.z),
  );
  return { centre, radius: median(d) };
}

// Median depth of the samples in front of a camera at `position` looking along unit `forward`.
export function medianDepth(samples, position, forward) {
  const depths = [];
  for (let i = 0; i < samples.length; i += 3) {
    const z =
      (samples[i] - position.x) * forward.x +
      (samples[i + 1] - position.y) * forward.y +
      (samples[i + 2] - position.z) * forward.z;
    if (z > 0) depths.push(z);
  }
  return median(depths);
}
