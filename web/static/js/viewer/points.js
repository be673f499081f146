// The point cloud (points.ply) as three.js points, filtered by a confidence percentile.
//
// Points are sorted by decreasing confidence once; hiding the lowest p % is then only a draw range.

import * as THREE from "three";

export class PointCloud {
  constructor(parsed) {
    const n = parsed.count;
    const order = Array.from({ length: n }, (_, i) => i);
    this.sortedConfidence = null;
    if (parsed.confidence) {
      const c = parsed.confidence;
      order.sort((a, b) => c[b] - c[a]);
      this.sortedConfidence = Float32Array.from(order, (i) => c[i]);
    }
    const positions = new Float32Array(3 * n);
    const colors = new Float32Array(3 * n);
    const color = new THREE.Color();
    order.forEach((src, dst) => {
      positions.set(parsed.positions.subarray(3 * src, 3 * src + 3), 3 * dst);
      // PLY colours are sRGB; three.js expects vertex colours in its linear working space.
      color.setRGB(...parsed.colors.subarray(3 * src, 3 * src + 3), THREE.SRGBColorSpace);
      colors.set([color.r, color.g, color.b], 3 * dst);
    });
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute("position", new THREE.BufferAttribute(positions, 3));
    geometry.setAttribute("color", new THREE.BufferAttribute(colors, 3));
    geometry.computeBoundingSphere();
    this.material = new THREE.PointsMaterial({ size: 2, sizeAttenuation: false, vertexColors: true });
    this.object = new THREE.Points(geometry, this.material);
    this.object.name = "points";
    this.count = n;
    this.hasConfidence = Boolean(parsed.confidence);
    this.visibleCount = n;
  }

  // Hide the `percent` % least confident points; returns {shown, threshold} (threshold null without
  // confidence values, in which case every point stays visible).
  setHiddenPercent(percent) {
    if (!this.hasConfidence) return { shown: this.count, threshold: null };
    const keep = Math.max(1, Math.round(this.count * (1 - percent / 100)));
    this.visibleCount = Math.min(this.count, keep);
    this.object.geometry.setDrawRange(0, this.visibleCount);
    return { shown: this.visibleCount, threshold: this.sortedConfidence[this.visibleCount - 1] };
  }

  setPointSize(px) {
    this.material.size = px;
  }
}
