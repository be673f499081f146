// The 3D stage: renderer, camera, Spark, orbit/fly navigation, camera flights and on-demand drawing.
//
// Drawing happens only when something changed (input, a flight, Spark finishing a sort: its renderer
// calls onDirty), so an idle viewer costs nothing. That matters in software WebGL, where one frame of
// 50k splats can take a good part of a second.

import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { SparkControls, SparkRenderer } from "@sparkjsdev/spark";

import { IntrinsicsCamera } from "./cameras.js";

const FLIGHT_MS = 700;

export class Stage {
  constructor(canvas, container) {
    this.canvas = canvas;
    this.container = container;
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: false, alpha: false });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setClearColor(0x000000, 1);
    this.scene = new THREE.Scene();
    this.camera = new IntrinsicsCamera(50, 1, 0.01, 1000);
    this.scene.add(this.camera);
    this.spark = new SparkRenderer({ renderer: this.renderer, onDirty: () => this.requestRender() });
    this.scene.add(this.spark);

    this.orbit = this.makeOrbit();
    this.fly = new SparkControls({ canvas });
    this.setNavigation("orbit");

    this.framesLeft = 0;
    this.flight = null;
    this.frameCount = 0;
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(container);
    this.resize();
    this.renderer.setAnimationLoop(() => this.tick());
  }

  requestRender(frames = 1) {
    this.framesLeft = Math.max(this.framesLeft, frames);
  }

  // True when nothing is left to draw: no flight, no requested frame, Spark neither updating nor sorting.
  get idle() {
    const sp = this.spark;
    return (
      !this.flight &&
      this.framesLeft <= 0 &&
      !sp.dirty &&
      !sp.sorting &&
      !sp.sortDirty &&
      sp.updateTimeoutId === -1 &&
      sp.sortTimeoutId === -1
    );
  }

  resize() {
    const { clientWidth: w, clientHeight: h } = this.container;
    if (w === 0 || h === 0) return;
    this.renderer.setSize(w, h, false);
    this.camera.setViewport(w, h);
    this.requestRender();
  }

  makeOrbit() {
    const orbit = new OrbitControls(this.camera, this.canvas);
    orbit.enableDamping = false;
    orbit.addEventListener("change", () => this.requestRender());
    orbit.addEventListener("start", () => this.onUserMove?.());
    return orbit;
  }

  // The world's up direction for orbiting (OrbitControls reads camera.up once, when it is built).
  setUp(up) {
    const target = this.orbit.target.clone();
    const enabled = this.orbit.enabled;
    this.orbit.dispose();
    this.camera.up.copy(up).normalize();
    this.orbit = this.makeOrbit();
    this.orbit.target.copy(target);
    this.orbit.enabled = enabled;
  }

  // "orbit": three's OrbitControls around a target; "fly": Spark's WASD/arrow keys and drag-to-look.
  setNavigation(mode) {
    if (mode !== "orbit" && mode !== "fly") throw new Error(`unknown navigation mode '${mode}'`);
    this.navigation = mode;
    this.orbit.enabled = mode === "orbit";
    this.fly.fpsMovement.enable = mode === "fly";
    this.fly.pointerControls.enable = mode === "fly";
    if (mode === "orbit") {
      // Re-aim the orbit at the point straight ahead at the same distance as before.
      const distance = this.camera.position.distanceTo(this.orbit.target) || 1;
      const ahead = new THREE.Vector3(0, 0, -distance).applyQuaternion(this.camera.quaternion);
      this.orbit.target.copy(this.camera.position).add(ahead);
      this.orbit.update();
    }
    this.requestRender();
  }

  // Scene length scale sets fly speed and clipping planes.
  setScale(scale) {
    this.fly.fpsMovement.moveSpeed = scale;
    this.camera.near = scale * 1e-3;
    this.camera.far = scale * 1e3;
    this.camera.updateProjectionMatrix();
  }

  // Put the camera at `cameraToWorld` (three.js convention) at once, looking at a point `focus` units ahead.
  jumpTo(cameraToWorld, focus) {
    const pos = new THREE.Vector3();
    const quat = new THREE.Quaternion();
    cameraToWorld.decompose(pos, quat, new THREE.Vector3());
    this.setPose(pos, quat, focus);
  }

  // Exact pose (roll included); the orbit target goes `focus` units straight ahead. OrbitControls levels
  // the roll against the world up only once the user starts to orbit.
  setPose(pos, quat, focus) {
    this.camera.position.copy(pos);
    this.camera.quaternion.copy(quat);
    this.camera.updateMatrixWorld(true);
    this.orbit.target.copy(pos).add(new THREE.Vector3(0, 0, -focus).applyQuaternion(quat));
    this.requestRender();
  }

  // Animate to a pose; resolves when the camera arrives (or at once when `ms` is 0).
  flyTo(cameraToWorld, focus, ms = FLIGHT_MS) {
    const toPos = new THREE.Vector3();
    const toQuat = new THREE.Quaternion();
    cameraToWorld.decompose(toPos, toQuat, new THREE.Vector3());
    if (this.flight) this.flight.resolve();
    return new Promise((resolve) => {
      if (ms <= 0) {
        this.setPose(toPos, toQuat, focus);
        resolve();
        return;
      }
      this.flight = {
        fromPos: this.camera.position.clone(),
        fromQuat: this.camera.quaternion.clone(),
        toPos,
        toQuat,
        focus,
        start: performance.now(),
        ms,
        resolve,
      };
      this.requestRender();
    });
  }

  tick() {
    if (this.flight) {
      const f = this.flight;
      const t = Math.min(1, (performance.now() - f.start) / f.ms);
      const e = t * t * (3 - 2 * t); // smoothstep
      if (t < 1) {
        this.camera.position.lerpVectors(f.fromPos, f.toPos, e);
        this.camera.quaternion.slerpQuaternions(f.fromQuat, f.toQuat, e);
        this.requestRender();
      } else {
        this.flight = null;
        this.setPose(f.toPos, f.toQuat, f.focus);
        f.resolve();
      }
    } else if (this.navigation === "fly" && this.fly.update(this.camera, this.camera)) {
      this.onUserMove?.();
      this.requestRender();
    }
    if (this.framesLeft <= 0 && !this.spark.dirty) return;
    this.framesLeft = Math.max(0, this.framesLeft - 1);
    this.renderer.render(this.scene, this.camera);
    this.frameCount += 1;
  }

  // Draw now and return the canvas content as a PNG blob (read in the same task as the draw, so the
  // drawing buffer is still intact without preserveDrawingBuffer).
  snapshot() {
    this.renderer.render(this.scene, this.camera);
    return new Promise((resolve, reject) =>
      this.canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("the canvas could not be encoded"))), "image/png"),
    );
  }
}
