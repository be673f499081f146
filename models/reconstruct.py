"""Images in, a :class:`Reconstruction` out: preprocessing, one forward pass, cameras, depth, Gaussians.

:class:`Reconstructor` holds one loaded network. ``reconstruct`` handles one scene; ``reconstruct_batch`` runs
scenes with the same view count, model-input size and anchor budget in one forward pass (the service's
batcher uses it). Outputs are numpy arrays (plus a :class:`~renderer.types.Gaussians` on the CPU):

* cameras per input view, ``world_to_camera`` (OpenCV) and ``K`` at the view's *original* image size,
  converted from VGGT's integer-index intrinsics with ``renderer.conventions.vggt_intrinsics_to_opencv``;
* depth, confidence, colours and world points at the model-input resolution (points from depth + camera,
  the more accurate of VGGT's two point estimates);
* Gaussians from the anchor views (Gaussian head, or the training-free path).

Caller-given ``intrinsics`` replace the predicted ones; caller-given ``poses`` pick the anchors, replace the
predicted cameras, and scale depth by the Sim(3) fit of predicted to given camera centres, so every output is
in the caller's frame and units. Non-finite network outputs raise :class:`NonFiniteOutputError`.
``refine=True`` corrects the predicted cameras after the forward pass (:mod:`models.refine`: SIFT, PnP on the
predicted depth, bundle adjustment) and corrects each view's depth to agree with them (a smooth factor
fitted to the adjusted points, :mod:`models.depth_field`), before Gaussians are built. With given poses it
keeps them and fits each depth map to matches triangulated with them instead (:mod:`models.pose_depth`).
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from models.align import align_cameras
from models.build import DEFAULT_TINY_WEIGHTS, load_model
from models.gaussians import GaussianOptions, pixel_gaussians
from models.inputs import check_intrinsics, check_poses
from models.pose_depth import fit_depth_to_cameras
from models.preprocess import ImageTransform, as_unit_float, preprocess_images
from models.refine import RefineOptions, refine_cameras
from models.vggt import VGGT, InferenceOutput, check_registration
from renderer.conventions import (
    camera_centers,
    pose_encoding_to_extrinsics_intrinsics,
    unproject_depth,
    unproject_pixels,
    vggt_intrinsics_to_opencv,
)
from renderer.types import Gaussians

#: relative RMS error of the camera-centre fit past which a scene given poses without ``refine`` is warned
#: that its depth scale is unreliable (measured on the procedural suite: the predicted baselines are
#: typically 2-50x too short, with fits at 0.4-0.97; docs/MODEL.md "Caller-given intrinsics and poses")
POOR_ALIGNMENT = 0.25

#: predicted fields of view are clamped to this range (radians) so intrinsics stay finite
MIN_FOV, MAX_FOV = 0.01, 3.1
#: per-scene model input widths allowed, in patches: 2 (the smallest grid the DPT heads upsample) to 74
#: (1036 px at patch 14, twice VGGT's 518): past that the position grid is stretched far beyond training
RESOLUTION_PATCHES = (2, 74)


def resolution_range(patch: int) -> tuple[int, int]:
    """Smallest and largest model input width (pixels) a scene may ask for; both multiples of ``patch``."""
    lo, hi = RESOLUTION_PATCHES
    return lo * patch, hi * patch


def check_resolution(resolution: int | None, default_width: int, patch: int) -> int:
    """The model input width for a requested ``resolution`` (None: ``default_width``, the preset's).

    Raises:
        ValueError: not an integer multiple of ``patch`` within :func:`resolution_range`.
    """
    if resolution is None:
        return default_width
    lo, hi = resolution_range(patch)
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, (int, np.integer))
        or not lo <= resolution <= hi
        or resolution % patch
    ):
        raise ValueError(
            f"resolution must be a multiple of the patch size {patch} from {lo} to {hi} pixels "
            f"(model input width), got {resolution!r}"
        )
    return int(resolution)


class NonFiniteOutputError(RuntimeError):
    """The network produced NaN/Inf where a value is required; nothing may be written as a result."""


@dataclass
class ReconstructionInput:
    """One scene for :meth:`Reconstructor.reconstruct_batch` (same meaning as ``reconstruct``'s arguments).

    ``resolution`` is the model input width in pixels (None: the preset's own, 224 for ``tiny``); scenes of
    different input size never share a forward pass. ``refine`` runs :mod:`models.refine` on this scene's
    cameras after the (shared) forward pass.
    """

    images: list[np.ndarray] | Tensor
    intrinsics: np.ndarray | Tensor | None = None
    poses: np.ndarray | Tensor | None = None
    max_anchors: int = 8
    resolution: int | None = None
    refine: bool = False


@dataclass
class Reconstruction:
    """One reconstructed scene (``S`` views; maps at the model-input resolution ``h×w``).

    Attributes:
        world_to_camera: ``[S, 4, 4]`` float64, OpenCV axes.
        K: ``[S, 3, 3]`` float64 at each input image's original size (pixel centres at +0.5).
        image_hw: original ``(H, W)`` per view.
        depth: ``[S, h, w]`` float32 z-depth; ``depth_conf`` ``[S, h, w]`` (> 1; 0 on padding).
        world_points: ``[S, h, w, 3]`` float32 from depth + camera, lifted on first use and then kept
            (a property: at 64 views of 224² it is 38.5 MB that a caller exporting a 100k-point subset via
            :meth:`points_at` never needs); ``points_conf`` ``[S, h, w]``, the same array as
            ``depth_conf`` (the points' confidence is their depth's).
        rgb: ``[S, h, w, 3]`` uint8, the model-input RGB (images given as floats are rounded to 8 bits
            here; their Gaussians' colours come from the floats); :attr:`colors` is the same as float32
            in [0, 1], made on first use.
        valid: ``[S, h, w]`` bool, False on padding added for mixed image sizes.
        K_model: ``[S, 3, 3]`` float64 intrinsics of the ``h×w`` maps.
        gaussians: from the anchor views.
        anchors: anchor view indices (view 0 first); ``assignment``: anchor index each view belongs to.
        report: timings, device, peak memory, anchors, compression mode, warnings …
    """

    world_to_camera: np.ndarray
    K: np.ndarray
    image_hw: list[tuple[int, int]]
    depth: np.ndarray
    depth_conf: np.ndarray
    points_conf: np.ndarray
    rgb: np.ndarray
    valid: np.ndarray
    K_model: np.ndarray
    gaussians: Gaussians
    anchors: list[int]
    assignment: list[int]
    report: dict[str, Any] = field(default_factory=dict)
    _world_points: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _colors: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def num_views(self) -> int:
        return int(self.world_to_camera.shape[0])

    @property
    def world_points(self) -> np.ndarray:
        """``[S, h, w, 3]`` float32 world points of every pixel (0 where depth is 0), lifted a few views at
        a time on first use and kept."""
        if self._world_points is None:
            S, h, w = self.depth.shape
            points = np.empty((S, h, w, 3), np.float32)
            depth = torch.from_numpy(self.depth)
            K = torch.from_numpy(self.K_model).float()
            w2c = torch.from_numpy(self.world_to_camera).float()
            for i in range(0, S, 8):  # bounded temporaries
                points[i : i + 8] = unproject_depth(depth[i : i + 8], K[i : i + 8], w2c[i : i + 8]).numpy()
            self._world_points = points
        return self._world_points

    @property
    def colors(self) -> np.ndarray:
        """``[S, h, w, 3]`` float32 in [0, 1] (``rgb / 255``), made on first use and kept."""
        if self._colors is None:
            self._colors = self.rgb.astype(np.float32) / np.float32(255.0)
        return self._colors

    @property
    def pose_sources(self) -> list[str]:
        """Where each view's camera pose comes from, for people reading the result: ``"given"`` (the
        caller's poses), ``"refined"`` (re-estimated by :mod:`models.refine`), ``"reference"`` (the view
        the refined ones are relative to: view 0, or where registration started when view 0 did not
        register), else ``"predicted"`` (the network's camera head)."""
        if self.report.get("poses", {}).get("source") == "given":
            return ["given"] * self.num_views
        refinement = self.report.get("refinement", {})
        sources = ["predicted"] * self.num_views
        if refinement.get("status") == "done":
            for v in refinement.get("refined_views", []):
                sources[v] = "refined"
            reference = refinement.get("reference_view", 0)
            if refinement.get("refined_views"):
                sources[reference] = "reference"
        return sources

    def points_at(self, flat_index: np.ndarray) -> np.ndarray:
        """``[N, 3]`` float32 world points of the pixels at ``flat_index`` (indices into the flattened
        ``[S, h, w]`` maps), lifted view by view without building :attr:`world_points`; the same values
        as ``world_points.reshape(-1, 3)[flat_index]`` (up to float32 rounding)."""
        flat_index = np.asarray(flat_index, dtype=np.int64)
        if self._world_points is not None:
            return self._world_points.reshape(-1, 3)[flat_index]
        S, h, w = self.depth.shape
        out = np.empty((len(flat_index), 3), np.float32)
        view, pixel = np.divmod(flat_index, h * w)
        uv = np.stack([pixel % w + 0.5, pixel // w + 0.5], -1).astype(np.float32)
        depth = self.depth.reshape(S, h * w)
        for s in np.unique(view):
            sel = np.flatnonzero(view == s)
            out[sel] = unproject_pixels(
                torch.from_numpy(uv[sel]),
                torch.from_numpy(np.ascontiguousarray(depth[s, pixel[sel]])),
                torch.from_numpy(self.K_model[s]).float(),
                torch.from_numpy(self.world_to_camera[s]).float(),
            ).numpy()
        return out


def _all_finite(t: Tensor) -> bool:
    """Whether a floating tensor has no NaN or ±inf. ``aminmax`` propagates NaN and keeps ±inf, and on CPU
    it is ~20× faster than ``isfinite(t).all()`` (one reduction, no boolean temporary)."""
    if t.numel() == 0:
        return True
    lo, hi = torch.aminmax(t)
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


def _rss_peak_bytes() -> int:
    """This process's peak resident set: ``VmHWM`` (per address space, so a forked or exec'd worker does not
    inherit its parent's peak as ``ru_maxrss`` can), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


class Reconstructor:
    """A loaded network plus everything around it (see module doc).

    Args:
        preset: ``"tiny"`` or ``"vggt-1b"``.
        weights: checkpoint path, or ``None`` (see :func:`models.build.load_model`).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        chunk: views per patch-embed / registration / head call.
        gaussian_options: dropping / scale knobs for Gaussians.
        refine_options: knobs of camera refinement (``refine=True``; default ``RefineOptions()``);
            caller-given intrinsics always keep the focal lengths fixed.
        model: an already loaded network to use instead of loading one (tests, services sharing a model).
        cpu_bf16: on the CPU, run the network under bfloat16 autocast (sets ``VGGT.cpu_bf16`` on the
            model): ~1.2× faster on a CPU with native bf16, metrics within 0.001 of float32
            (``docs/MODEL.md``, "Precision"). No effect on CUDA, which autocasts the trunk anyway.
        registration: what support views attend to in the registration pass (more views than
            ``max_anchors``; sets ``VGGT.registration``): ``"all"`` anchors (default) or ``"pair"``, view 0's
            and the nearest other anchor's tokens only (10–20 % faster at 16–64 views, slightly less accurate
            cameras: ``docs/MODEL.md``, "Registration keys").
    """

    def __init__(
        self,
        preset: str = "tiny",
        weights: str | None = None,
        device: str = "auto",
        *,
        chunk: int = 8,
        gaussian_options: GaussianOptions | None = None,
        model: VGGT | None = None,
        cpu_bf16: bool = False,
        refine_options: RefineOptions | None = None,
        registration: str = "all",
    ) -> None:
        check_registration(registration)  # before loading any weights
        t0 = time.perf_counter()
        self.model = model if model is not None else load_model(preset, weights, device)
        self.model.cpu_bf16 = cpu_bf16
        self.model.registration = registration
        self.load_seconds = time.perf_counter() - t0
        self.cfg = self.model.cfg
        self.device = next(self.model.parameters()).device
        self.chunk = chunk
        self.gaussian_options = gaussian_options or GaussianOptions()
        self.refine_options = refine_options

    @property
    def precision(self) -> str:
        """How the network computes on this device (``report.json``'s ``precision``)."""
        if self.device.type == "cuda":
            return "autocast (trunk bf16/fp16), heads float32" if self.model.amp else "float32"
        return "bfloat16 autocast (trunk and dense heads)" if self.model.cpu_bf16 else "float32"

    # -------------------------------------------------------------------------------------------- API
    def reconstruct(
        self,
        images: list[np.ndarray] | Tensor,
        intrinsics: np.ndarray | Tensor | None = None,
        poses: np.ndarray | Tensor | None = None,
        max_anchors: int = 8,
        resolution: int | None = None,
        refine: bool = False,
    ) -> Reconstruction:
        """Reconstruct one scene.

        Args:
            images: list of ``[H, W, 3]`` uint8 arrays (any sizes) or a float ``[S, 3, H, W]`` in [0, 1].
            intrinsics: optional ``[3, 3]`` or ``[S, 3, 3]`` in pixels of the original images.
            poses: optional ``[S, 4, 4]`` world→camera (OpenCV axes) in the caller's frame.
            max_anchors: ZPressor anchor budget ``N``.
            resolution: model input width in pixels, a multiple of the patch size within
                :func:`resolution_range`; None for the preset's own width. Depth, points and colours come
                out at that width (heights follow the images' aspect, see ``models.preprocess``).
            refine: after the forward pass, refine the cameras with SIFT matches, the predicted depth, PnP
                and bundle adjustment (:mod:`models.refine`; slower, far better cameras from the ``tiny``
                model). Skipped when ``poses`` are given; given ``intrinsics`` are kept fixed.
        """
        item = ReconstructionInput(images, intrinsics, poses, max_anchors, resolution, refine)
        return self.reconstruct_batch([item])[0]

    def check_resolution(self, resolution: int | None) -> int:
        """The model input width for ``resolution`` (None: the preset's); see :func:`check_resolution`."""
        return check_resolution(resolution, self.cfg.input_width, self.cfg.patch_size)

    def reconstruct_batch(self, inputs: list[ReconstructionInput]) -> list[Reconstruction]:
        """Reconstruct several scenes; those with equal view count, input size (so equal ``resolution``) and
        anchor budget share one forward pass. Results come back in input order."""
        if not isinstance(inputs, (list, tuple)) or not inputs:
            raise ValueError("inputs must be a non-empty list of ReconstructionInput")
        prepared = [self._prepare(i, item) for i, item in enumerate(inputs)]
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(prepared):
            key = (tuple(p["images"].shape), p["images"].dtype, p["max_anchors"])
            groups.setdefault(key, []).append(i)
        results: list[Reconstruction | None] = [None] * len(inputs)
        for idx in groups.values():
            t0 = time.perf_counter()
            if self.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.device)
            # one scene: a view, not a copy; several: the stack replaces the scenes' own tensors
            scenes = [prepared[i].pop("images") for i in idx]
            batch = (scenes[0][None] if len(scenes) == 1 else torch.stack(scenes)).to(self.device)
            del scenes
            anchor_points = [
                None if prepared[i]["poses"] is None else camera_centers(prepared[i]["poses"]).float()
                for i in idx
            ]
            with torch.inference_mode():
                out = self.model.infer(
                    batch,
                    max_anchors=prepared[idx[0]]["max_anchors"],
                    anchor_points=anchor_points,
                    chunk=self.chunk,
                    points=False,
                    gaussians=True,
                )
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            t_infer = time.perf_counter() - t0
            for b, i in enumerate(idx):
                results[i] = self._finish(prepared[i], out, b, batch[b], t_infer, len(idx))
        return results  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------- internals
    def _prepare(self, i: int, item: ReconstructionInput) -> dict[str, Any]:
        if not isinstance(item, ReconstructionInput):
            raise TypeError(f"inputs[{i}] must be a ReconstructionInput, got {type(item).__name__}")
        if not isinstance(item.max_anchors, int) or item.max_anchors < 1:
            raise ValueError(f"max_anchors must be an integer >= 1, got {item.max_anchors!r}")
        width = self.check_resolution(item.resolution)
        t0 = time.perf_counter()
        images, transforms = preprocess_images(item.images, target_width=width, patch=self.cfg.patch_size)
        S = images.shape[0]
        K = None if item.intrinsics is None else check_intrinsics(item.intrinsics, S)
        poses = None if item.poses is None else check_poses(item.poses, S)
        return {
            "images": images,
            "transforms": transforms,
            "intrinsics": K,
            "poses": poses,
            "max_anchors": item.max_anchors,
            "refine": bool(item.refine),
            "t_preprocess": time.perf_counter() - t0,
        }

    def _finish(
        self,
        prep: dict[str, Any],
        out: InferenceOutput,
        b: int,
        images: Tensor,
        t_infer: float,
        batch_size: int,
    ) -> Reconstruction:
        t0 = time.perf_counter()
        transforms: list[ImageTransform] = prep["transforms"]
        S, _, H, W = images.shape
        valid = torch.from_numpy(np.stack([t.valid_mask() for t in transforms]))
        pose_enc = out.pose_enc[b].double().cpu()
        depth = out.depth[b].float().cpu()
        conf = out.depth_conf[b].float().cpu()
        self._check_finite(pose_enc, depth, conf, valid, out, b)

        warnings: list[str] = []
        w2c, K_model, depth_scale, intrinsics_source, poses_info = self._cameras(
            prep, pose_enc, (H, W), warnings
        )
        # in place (on the CPU these are views of the network's output, which nothing reads after this):
        # they are inference tensors, which only inference mode may update
        with torch.inference_mode():
            depth = depth.mul_(depth_scale).masked_fill_(~valid, 0.0)
            conf = conf.masked_fill_(~valid, 0.0)
        rgb = images.permute(0, 2, 3, 1).cpu()  # a view, no copy: uint8 (or float, made uint8 below)
        if rgb.is_floating_point():
            rgb = rgb.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)

        anchors = out.anchors[b].cpu()
        refinement: dict[str, Any] = {"status": "off"}
        if prep["refine"]:
            w2c, K_model, refinement = self._refine(prep, rgb, depth, valid, K_model, w2c, anchors, warnings)
        elif prep["poses"] is not None and S >= 2:
            fit = poses_info["alignment"]
            if fit["method"] != "sim3" or fit["relative_error"] > POOR_ALIGNMENT:
                warnings.append(
                    f"poses: depth is in the given units only through a {fit['method']} fit of the "
                    f"predicted camera centres (relative error {fit['relative_error']:.2f}); refine=true "
                    "fits each depth map to matches triangulated with the given cameras"
                )
        raw = None if out.gaussian_raw is None else out.gaussian_raw[b].float().cpu()
        gaussians = pixel_gaussians(
            depth[anchors],
            conf[anchors],
            as_unit_float(images[anchors.to(images.device)]).permute(0, 2, 3, 1).cpu(),  # the model's input
            K_model[anchors],
            w2c[anchors],
            valid[anchors],
            raw,
            sh_degree=self.cfg.gaussian_head.sh_degree if raw is not None else 0,
            options=self.gaussian_options,
        )
        K_orig = torch.stack([t.K_to_original(k) for t, k in zip(transforms, K_model, strict=True)])
        if prep["intrinsics"] is not None:
            K_orig = prep["intrinsics"].clone()

        info = getattr(self.model, "weights_info", {"source": "unknown"})
        if info.get("source") == "random":
            warnings.append(
                f"weights: preset '{self.cfg.name}' uses seeded random weights (no trained file at "
                f"{DEFAULT_TINY_WEIGHTS}); outputs show the plumbing, not a meaningful reconstruction"
            )
        if len({t.content_hw for t in transforms}) > 1:
            warnings.append("images have different sizes after resizing: padded with white to a common size")
        compression_note = {
            "none": f"{S} views <= max_anchors={prep['max_anchors']}: every view is an anchor",
            "zpressor": "ZPressor fusion of support views into anchors; support views registered to them",
            "identity": "checkpoint has no ZPressor weights: identity compression (anchors + registration)",
        }[out.compression]
        timings = {
            "load_model": round(self.load_seconds, 4),
            "preprocess": round(prep["t_preprocess"], 4),
            "inference": round(t_infer, 4),
            "postprocess": round(time.perf_counter() - t0 - refinement.get("seconds", 0.0), 4),
        }
        if "seconds" in refinement:
            timings["refine"] = refinement["seconds"]
        if self.device.type == "cuda":
            peak = {"kind": "cuda_max_allocated", "bytes": int(torch.cuda.max_memory_allocated(self.device))}
        else:
            peak = {"kind": "process_peak_rss", "bytes": _rss_peak_bytes()}
        report = {
            "preset": self.cfg.name,
            "weights": {
                k: v
                for k, v in info.items()
                if k in ("source", "path", "seed", "format", "unused_parameters")
            },
            "device": str(self.device),
            "precision": self.precision,
            "views": S,
            "model_hw": [H, W],
            "batch_size": batch_size,
            "anchors": anchors.tolist(),
            "max_anchors": prep["max_anchors"],
            "compression": out.compression,
            "compression_note": compression_note,
            # what support views attended to (None: every view was an anchor, no registration pass)
            "registration": None if out.compression == "none" else self.model.registration,
            "intrinsics": intrinsics_source,
            "poses": poses_info,
            "refinement": refinement,
            "points_source": "depth+camera",
            "gaussians": {
                "source": "gaussian_head"
                if raw is not None
                else "training-free (depth + colour + confidence)",
                "count": len(gaussians),
                "from_views": anchors.tolist(),
            },
            "timings_s": timings,
            # the network's stages within "inference" (a batch shares one pass: these are the batch's)
            "inference_stages_s": dict(out.stage_seconds),
            "peak_memory": peak,
            "warnings": warnings,
        }
        return Reconstruction(
            world_to_camera=w2c.numpy(),
            K=K_orig.numpy(),
            image_hw=[t.original_hw for t in transforms],
            depth=depth.numpy(),
            depth_conf=conf.numpy(),
            points_conf=conf.numpy(),  # the same array: points are depth + camera, so is their confidence
            rgb=rgb.numpy(),
            valid=valid.numpy(),
            K_model=K_model.numpy(),
            gaussians=gaussians,
            anchors=anchors.tolist(),
            assignment=[int(anchors[j]) for j in out.labels[b].cpu().tolist()],
            report=report,
        )

    @staticmethod
    def _cameras(
        prep: dict[str, Any], pose_enc: Tensor, hw: tuple[int, int], warnings: list[str]
    ) -> tuple[Tensor, Tensor, float, str, dict[str, Any]]:
        """Final cameras of one scene at model resolution, and the depth scale that goes with them.

        Predicted ``absT_quaR_FoV`` → world→camera and VGGT intrinsics → ours (+0.5 principal point). Given
        intrinsics replace ours (mapped through each image's resize/crop/pad); given poses replace the
        predicted ones, and depth is scaled by the Sim(3) fit of predicted to given camera centres.

        Returns:
            ``world_to_camera [S, 4, 4]``, ``K_model [S, 3, 3]`` (float64), depth scale, and the
            intrinsics / poses entries of the report.
        """
        S = pose_enc.shape[0]
        fov = pose_enc[:, 7:9]
        clamped = ((fov < MIN_FOV) | (fov > MAX_FOV)).any(-1).nonzero().flatten().tolist()
        if clamped:
            warnings.append(
                f"camera field of view outside [{MIN_FOV}, {MAX_FOV}] rad clamped for views {clamped[:10]}"
            )
            pose_enc = torch.cat([pose_enc[:, :7], fov.clamp(MIN_FOV, MAX_FOV)], -1)
        w2c, K_vggt = pose_encoding_to_extrinsics_intrinsics(pose_enc, hw)
        K_model = vggt_intrinsics_to_opencv(K_vggt)
        intrinsics_source = "predicted"
        if prep["intrinsics"] is not None:
            pairs = zip(prep["transforms"], prep["intrinsics"], strict=True)
            K_model = torch.stack([t.K_to_model(k) for t, k in pairs])
            intrinsics_source = "given"
        poses_info: dict[str, Any] = {"source": "predicted"}
        scale = 1.0
        if prep["poses"] is not None:
            alignment = align_cameras(w2c, prep["poses"])
            scale = alignment.scale
            w2c = prep["poses"].clone()
            poses_info = {"source": "given", "alignment": alignment.to_dict()}
            if alignment.method != "sim3":
                warnings.append(f"poses: {S} view(s) only fix the alignment partially ({alignment.method})")
        return w2c, K_model, scale, intrinsics_source, poses_info

    def _refine(
        self,
        prep: dict[str, Any],
        rgb: Tensor,
        depth: Tensor,
        valid: Tensor,
        K_model: Tensor,
        w2c: Tensor,
        anchors: Tensor,
        warnings: list[str],
    ) -> tuple[Tensor, Tensor, dict[str, Any]]:
        """Refined cameras (:mod:`models.refine`); corrects ``depth`` in place, view by view, to match them
        (a smooth factor fitted to the bundle-adjusted points, or one scale per view). With caller-given
        poses the cameras stay and only the depth is fitted to matches triangulated with them
        (:mod:`models.pose_depth`)."""
        t0 = time.perf_counter()
        base = self.refine_options or RefineOptions()
        # caller-given intrinsics stay fixed
        options = replace(base, refine_focal=base.refine_focal and prep["intrinsics"] is None)
        arrays = (rgb.numpy(), depth.numpy(), valid.numpy(), K_model.numpy(), w2c.numpy(), anchors.tolist())
        if prep["poses"] is not None:
            result = fit_depth_to_cameras(*arrays, options)
        else:
            result = refine_cameras(*arrays, options)
        with torch.inference_mode():
            for v in range(depth.shape[0]):  # one view's factor at a time: no second copy of every map
                depth[v].mul_(torch.from_numpy(result.depth_factor_of(v)).to(depth.dtype))
        kept = result.report.get("kept_views", [])
        if kept:
            warnings.append(
                f"refine: views {kept[:10]} could not be registered (too few matches with the others); "
                "they keep the predicted cameras"
            )
        report = {"status": "done", **result.report, "seconds": round(time.perf_counter() - t0, 4)}
        return torch.from_numpy(result.world_to_camera), torch.from_numpy(result.K), report

    @staticmethod
    def _check_finite(
        pose_enc: Tensor, depth: Tensor, conf: Tensor, valid: Tensor, out: InferenceOutput, b: int
    ) -> None:
        if all(_all_finite(t) for t in (pose_enc, depth, conf)) and (
            out.gaussian_raw is None or _all_finite(out.gaussian_raw[b])
        ):
            return  # the common case, in one reduction per tensor; the per-view search below names culprits
        problems = []
        bad_pose = (~torch.isfinite(pose_enc).all(-1)).nonzero().flatten().tolist()
        if bad_pose:
            problems.append(f"camera of views {bad_pose[:10]}")
        for name, t in (("depth", depth), ("depth confidence", conf)):
            bad = (~torch.isfinite(t) & valid).flatten(1).any(1).nonzero().flatten().tolist()
            if bad:
                problems.append(f"{name} of views {bad[:10]}")
        if out.gaussian_raw is not None and not torch.isfinite(out.gaussian_raw[b]).all():
            problems.append("Gaussian-head output of the anchors")
        if problems:
            raise NonFiniteOutputError("network produced non-finite values: " + "; ".join(problems))
