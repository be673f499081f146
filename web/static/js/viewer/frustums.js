// Input cameras drawn as wireframe frustums with a clickable image plane showing the photo.

import * as THREE from "three";

import { frustumCorners } from "./cameras.js";

const COLOR = 0xffb000;
const COLOR_ACTIVE = 0x33ddff;
const COLOR_ANCHOR = 0xff5a36;

export class Frustums {
  // frames: parsed cameras.json frames; size: depth of the drawn image plane in scene units;
  // imageUrl(frame): URL of the frame's input photo (or null when the service does not serve it).
  constructor(frames, size, imageUrl) {
    this.group = new THREE.Group();
    this.group.name = "input-cameras";
    this.items = frames.map((frame) => this.build(frame, size, imageUrl(frame)));
    this.raycaster = new THREE.Raycaster();
    this.active = -1;
  }

  build(frame, size, url) {
    const corners = frustumCorners(frame.K, frame.width, frame.height, size);
    const apex = new THREE.Vector3();
    const points = [];
    for (let i = 0; i < 4; i++) points.push(apex, corners[i], corners[i], corners[(i + 1) % 4]);
    const color = frame.anchor ? COLOR_ANCHOR : COLOR;
    const lines = new THREE.LineSegments(
      new THREE.BufferGeometry().setFromPoints(points),
      new THREE.LineBasicMaterial({ color, depthTest: true }),
    );
    // Image plane: two triangles over the corners, UVs so the photo appears upright.
    const plane = new THREE.BufferGeometry();
    plane.setAttribute("position", new THREE.Float32BufferAttribute(corners.flatMap((c) => c.toArray()), 3));
    plane.setAttribute("uv", new THREE.Float32BufferAttribute([0, 1, 1, 1, 1, 0, 0, 0], 2));
    plane.setIndex([0, 3, 2, 0, 2, 1]);
    const material = new THREE.MeshBasicMaterial({
      color: 0xffffff,
      side: THREE.DoubleSide,
      transparent: true,
      opacity: 0.55,
      depthWrite: false,
    });
    const mesh = new THREE.Mesh(plane, material);
    mesh.userData.frameIndex = frame.index;
    if (url) {
      new THREE.TextureLoader().load(url, (tex) => {
        tex.colorSpace = THREE.SRGBColorSpace;
        material.map = tex;
        material.needsUpdate = true;
        this.onChange?.();
      });
    } else {
      material.opacity = 0.15;
    }
    const holder = new THREE.Group();
    holder.matrixAutoUpdate = false;
    holder.matrix.copy(frame.cameraToWorld);
    holder.add(lines, mesh);
    this.group.add(holder);
    return { frame, holder, lines, mesh, baseColor: color };
  }

  setVisible(visible) {
    this.group.visible = visible;
  }

  // Highlight one camera; `hideIt` also hides it (the view sits exactly at that camera, where its image
  // plane would cover the picture).
  setActive(index, hideIt = false) {
    this.active = index;
    for (const item of this.items) {
      const isIt = item.frame.index === index;
      item.lines.material.color.setHex(isIt ? COLOR_ACTIVE : item.baseColor);
      item.holder.visible = !(isIt && hideIt);
    }
  }

  // World position of the middle of a camera's image plane.
  centre(index) {
    const item = this.items[index];
    item.mesh.geometry.computeBoundingBox();
    return item.mesh.geometry.boundingBox.getCenter(new THREE.Vector3()).applyMatrix4(item.holder.matrix);
  }

  // Index of the frame whose image plane is under the pointer (normalised device coords), or -1.
  pick(ndc, camera) {
    if (!this.group.visible) return -1;
    this.raycaster.setFromCamera(ndc, camera);
    const hits = this.raycaster.intersectObjects(
      this.items.map((i) => i.mesh),
      false,
    );
    return hits.length ? hits[0].object.userData.frameIndex : -1;
  }
}
