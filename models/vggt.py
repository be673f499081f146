"""The VGGT network: aggregator + heads, with ZPressor compression and registration for many views.

Two entry points share every weight:

* :meth:`VGGT.forward` — the reference model: all views attend to all views; returns VGGT.forward's keys
  (``pose_enc``, ``pose_enc_list``, ``depth``, ``depth_conf``, ``world_points``, ``world_points_conf``,
  ``images``; plus ``gaussians`` when the config has a Gaussian head). Used for parity and training.
* :meth:`VGGT.infer` — the efficient path for reconstruction. With ``S ≤ max_anchors`` it computes exactly
  what ``forward`` computes. With more views it picks ``N = max_anchors`` anchors (``models.zpressor``), fuses
  each anchor with its support views (when the checkpoint has ZPressor weights; otherwise "identity"
  compression), runs the trunk on the anchors, and then a **registration pass**: support views, ``chunk`` at
  a time, run the same blocks with global attention whose keys/values are the anchors' recorded tokens, so
  every input view gets a camera and depth at a cost linear in the number of views, while anchor outputs do
  not depend on the support views except through the fusion. Gaussians come from the anchors only. With
  ``registration = "pair"`` a support view attends to two anchors' tokens (view 0's and its nearest other
  anchor's) instead of all ``N``: cheaper when there are many views, at a small cost in camera accuracy.

On CUDA the patch embed and trunk run under bf16 (fp16 where bf16 is unsupported) autocast; the heads
always run in float32. Shapes: ``B`` batch, ``S`` views, ``N`` anchors, ``H×W`` pixels.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from models.aggregator import Aggregator, TrunkOutput
from models.config import ModelConfig
from models.heads.camera_head import CameraHead
from models.heads.dpt_head import DPTHead
from models.heads.gaussian_head import GaussianHead
from models.heads.head_act import activate_depth, activate_points
from models.heads.track_head import TrackHeadWeights
from models.zpressor import (
    ZPressor,
    assign_to_anchors,
    cluster_table,
    farthest_point_anchors,
    partner_anchors,
    support_views,
    view_descriptors,
)

#: registration-pass variants (``VGGT.registration``). "all": every support view attends to all ``N``
#: anchors' recorded tokens (``N·P`` keys). "pair": to the reference anchor's and its partner anchor's only
#: (``2P`` keys, :class:`PairContext`; the partner is :func:`~models.zpressor.partner_anchors`, the nearest
#: anchor other than view 0), so the global blocks' cost per support view no longer grows with ``N``
#: (docs/MODEL.md, "Registration keys").
REGISTRATION_MODES = ("all", "pair")


def check_registration(mode: str) -> str:
    """``mode`` if it is one of :data:`REGISTRATION_MODES`, else ``ValueError`` naming the choices."""
    if mode not in REGISTRATION_MODES:
        raise ValueError(f"registration must be one of {', '.join(REGISTRATION_MODES)}, got {mode!r}")
    return mode


class PairContext(Sequence):
    """Per support view the keys/values of the reference anchor and of its partner anchor, layer by layer.

    Indexing layer ``i`` gathers that layer's pair (``[B·c, nh, 2P, d]`` for ``k`` and ``v``, the reference
    anchor's tokens first) when the block asks for it, so only one layer's copies are alive at a time.

    Args:
        context: per global layer the anchors' ``(k, v)``, each ``[B, nh, N·P, d]``.
        partners: ``[B, c]`` partner slot (in ``[1, N)``) of each support view of the chunk.
        num_anchors: ``N``.
    """

    def __init__(self, context: list[tuple[Tensor, Tensor]], partners: Tensor, num_anchors: int) -> None:
        self.context, self.partners, self.num_anchors = context, partners, num_anchors

    def __len__(self) -> int:
        return len(self.context)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        k, v = self.context[i]
        return self._select(k), self._select(v)

    def _select(self, t: Tensor) -> Tensor:
        B, c = self.partners.shape
        _, nh, NP, d = t.shape
        b_idx = torch.arange(B, device=t.device)[:, None]
        # [B, nh, N·P, d] -> [B, N, nh, P, d]
        per_anchor = t.view(B, nh, self.num_anchors, NP // self.num_anchors, d).transpose(1, 2)
        ref = per_anchor[:, :1].expand(B, c, -1, -1, -1)
        return torch.cat([ref, per_anchor[b_idx, self.partners]], 3).flatten(0, 1)


@dataclass
class InferenceOutput:
    """Result of :meth:`VGGT.infer` (activated; model-input resolution ``H×W``).

    Attributes:
        pose_enc: ``[B, S, 9]`` VGGT ``absT_quaR_FoV`` per input view.
        depth: ``[B, S, H, W]`` z-depth; ``depth_conf`` ``[B, S, H, W]`` (> 1).
        world_points: ``[B, S, H, W, 3]`` point-head output (``None`` when not requested / no head);
            ``world_points_conf`` likewise ``[B, S, H, W]``.
        gaussian_raw: ``[B, N, H, W, G]`` Gaussian-head output for the anchors, or ``None``.
        anchors: ``[B, N]`` anchor views (ascending; view 0 first).
        labels: ``[B, S]`` anchor slot each view is assigned to.
        compression: ``"none"`` (all views are anchors), ``"zpressor"`` (fusion blocks ran) or
            ``"identity"`` (anchors + registration without fusion weights).
        stage_seconds: wall seconds per stage (``embed``, ``select``, ``zpressor``, ``trunk``, ``heads``,
            ``registration_trunk``, ``registration_heads``, ``camera_head``; stages that did not run are
            absent). On CUDA each stage ends with a synchronise, so the numbers are the device's.
    """

    pose_enc: Tensor
    depth: Tensor
    depth_conf: Tensor
    world_points: Tensor | None
    world_points_conf: Tensor | None
    gaussian_raw: Tensor | None
    anchors: Tensor
    labels: Tensor
    compression: str
    stage_seconds: dict[str, float] = field(default_factory=dict)


class _StageClock:
    """Accumulates wall seconds per named stage (synchronising CUDA first, so work is not just queued)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}
        self._last = self._now()

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def lap(self, stage: str) -> None:
        """Charge the time since the previous lap to ``stage``."""
        now = self._now()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now


class VGGT(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim2 = 2 * cfg.embed_dim
        p = cfg.patch_size
        # names fixed by the VGGT-1B checkpoint (strict load): do not rename
        self.aggregator = Aggregator(cfg)
        self.camera_head = CameraHead(dim2, cfg.camera_head)
        self.point_head = DPTHead(dim2, cfg.point_head, 4, patch_size=p) if cfg.point_head else None
        self.depth_head = DPTHead(dim2, cfg.depth_head, 2, patch_size=p) if cfg.depth_head else None
        self.track_head = TrackHeadWeights(dim2, p) if cfg.track_head else None
        # onepass additions (absent from VGGT-1B)
        self.gaussian_head = (
            GaussianHead(dim2, cfg.gaussian_head, patch_size=p) if cfg.gaussian_head else None
        )
        self.zpressor = ZPressor(cfg.embed_dim, cfg.zpressor) if cfg.zpressor else None
        #: autocast the trunk on CUDA (heads stay float32)
        self.amp = True
        #: what a support view attends to in the registration pass's global blocks (``REGISTRATION_MODES``):
        #: "all" the anchors' tokens, or "pair" those of the reference anchor and of its partner anchor only
        self.registration = "all"
        #: autocast the trunk *and* the dense heads to bfloat16 on the CPU (the camera head, the head
        #: activations and every output stay float32). Off by default: float32 is the reference the parity
        #: tests check. The dense heads' convolutions are most of a CPU training step, so keeping them in
        #: float32 as on CUDA would leave most of the speed-up on the table (``docs/BENCHMARKS.md``,
        #: "bfloat16 on the CPU").
        self.cpu_bf16 = False

    # ------------------------------------------------------------------------------------------ helpers
    def _amp(self, device: torch.device):
        """The trunk's precision: bf16/fp16 autocast on CUDA, bf16 on the CPU when ``cpu_bf16``."""
        if device.type == "cuda" and self.amp:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        if device.type == "cpu" and self.cpu_bf16:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _head_precision(self, device: torch.device):
        """The dense heads' precision: float32 on CUDA (as VGGT), bf16 on the CPU when ``cpu_bf16``."""
        return self._amp(device) if device.type == "cpu" else self._fp32(device)

    @staticmethod
    def _fp32(device: torch.device):
        if device.type == "cuda":
            return torch.autocast("cuda", enabled=False)
        return contextlib.nullcontext()

    def _check_images(self, images: Tensor, *, allow_uint8: bool = False) -> Tensor:
        if not isinstance(images, Tensor):
            raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.dim() == 4:
            images = images[None]
        if images.dim() != 5 or images.shape[2] != 3:
            raise ValueError(f"images must be [S, 3, H, W] or [B, S, 3, H, W], got {list(images.shape)}")
        if not (images.is_floating_point() or (allow_uint8 and images.dtype == torch.uint8)):
            kinds = "a float tensor in [0, 1] or uint8" if allow_uint8 else "a float tensor in [0, 1]"
            raise TypeError(f"images must be {kinds}, got dtype {images.dtype}")
        H, W = images.shape[-2:]
        p = self.cfg.patch_size
        if H % p or W % p:
            raise ValueError(f"image size {H}x{W} must be a multiple of the patch size {p}")
        return images

    def _dense_heads(
        self, trunk: TrunkOutput, image_hw: tuple[int, int], *, points: bool, gaussians: bool
    ) -> dict[str, Tensor]:
        """Run the dense heads on one trunk output → activated float32 maps ``[B, S, H, W, ...]``.

        The heads run in float32 except on the CPU with ``cpu_bf16``; their raw outputs are made float32
        before the activations either way."""
        layers = [trunk.layers[i].float() for i in self.cfg.trunk.out_layers]
        out: dict[str, Tensor] = {}
        with self._head_precision(layers[0].device):
            depth_raw = point_raw = None
            if self.depth_head is not None:
                depth_raw = self.depth_head(layers, image_hw, trunk.patch_start)
            if points and self.point_head is not None:
                point_raw = self.point_head(layers, image_hw, trunk.patch_start)
            if gaussians and self.gaussian_head is not None:
                out["gaussians"] = self.gaussian_head(layers, image_hw, trunk.patch_start).float()
        if depth_raw is not None:
            out["depth"], out["depth_conf"] = activate_depth(depth_raw.float())
        if point_raw is not None:
            out["world_points"], out["world_points_conf"] = activate_points(point_raw.float())
        return out

    def _camera_tokens(self, trunk: TrunkOutput) -> Tensor:
        return trunk.layers[self.cfg.trunk.depth - 1][:, :, 0].float()  # [B, S, 2C]

    # ------------------------------------------------------------------------------------------ forward
    def forward(self, images: Tensor, query_points: Tensor | None = None) -> dict[str, Tensor | list[Tensor]]:
        """Reference forward: all views attend to all views.

        Args:
            images: ``[S, 3, H, W]`` or ``[B, S, 3, H, W]`` in [0, 1]; ``H, W`` multiples of the patch size.
            query_points: not supported (onepass does not run the track head).

        Returns:
            ``pose_enc [B, S, 9]``, ``pose_enc_list`` (one per refinement step), ``depth [B, S, H, W, 1]``,
            ``depth_conf [B, S, H, W]``, ``world_points [B, S, H, W, 3]``, ``world_points_conf [B, S, H, W]``,
            ``images`` (the input, when not training), and ``gaussians [B, S, H, W, G]`` (raw Gaussian-head
            output, see ``models.gaussians``) when the config has a Gaussian head.
        """
        if query_points is not None:
            raise ValueError(
                "query_points: point tracking is not implemented (track-head weights are loaded, unused)"
            )
        images = self._check_images(images)
        with self._amp(images.device):
            trunk = self.aggregator(images)
        out: dict[str, Tensor | list[Tensor]] = {}
        with self._fp32(images.device):
            pose_list = self.camera_head(self._camera_tokens(trunk))
        out["pose_enc"], out["pose_enc_list"] = pose_list[-1], pose_list
        out.update(self._dense_heads(trunk, tuple(images.shape[-2:]), points=True, gaussians=True))
        if not self.training:
            out["images"] = images
        return out

    # -------------------------------------------------------------------------------------------- infer
    def select_anchors(
        self, patch_tokens: Tensor, max_anchors: int, anchor_points: list[Tensor | None] | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Anchors ``[B, N]``, view→anchor-slot labels ``[B, S]`` and registration partners ``[B, S]``.

        Per batch element: farthest point sampling from view 0 on ``anchor_points[b]`` (camera centres
        ``[S, 3]``) when given, else on :func:`~models.zpressor.view_descriptors` of the patch tokens.
        Partners (:func:`~models.zpressor.partner_anchors`) are ``None`` when every view is an anchor or
        there is a single anchor.
        """
        B, S = patch_tokens.shape[:2]
        N = min(S, max_anchors)
        if N == S:
            ar = torch.arange(S, device=patch_tokens.device)
            return ar.expand(B, S).clone(), ar.expand(B, S).clone(), None
        desc = view_descriptors(patch_tokens)
        anchors, labels, partners = [], [], []
        for b in range(B):
            given = None if anchor_points is None else anchor_points[b]
            pts = (desc[b] if given is None else given.to(desc.device).double())[None]
            a = farthest_point_anchors(pts, N)
            anchors.append(a[0])
            labels.append(assign_to_anchors(pts, a)[0])
            if N >= 2:
                partners.append(partner_anchors(pts, a)[0])
        return torch.stack(anchors), torch.stack(labels), torch.stack(partners) if partners else None

    def infer(
        self,
        images: Tensor,
        *,
        max_anchors: int = 8,
        anchor_points: list[Tensor | None] | None = None,
        chunk: int = 8,
        points: bool = True,
        gaussians: bool = True,
        registration: str | None = None,
    ) -> InferenceOutput:
        """Efficient inference with anchors, ZPressor fusion and the registration pass (see module doc).

        Args:
            images: ``[S, 3, H, W]`` or ``[B, S, 3, H, W]``, float in [0, 1] or uint8 (made float a chunk of
                views at a time, see ``Aggregator.embed``).
            max_anchors: ``N``; with ``S ≤ N`` every view is an anchor (same result as :meth:`forward`).
            anchor_points: per batch element camera centres ``[S, 3]`` (or ``None``) for anchor selection.
            chunk: views per patch-embed / registration / head call (bounds memory).
            points: also run the point head; gaussians: also run the Gaussian head on the anchors.
            registration: this call's registration mode (:data:`REGISTRATION_MODES`); ``None``: the model's
                ``registration`` attribute.
        """
        images = self._check_images(images, allow_uint8=True)
        if max_anchors < 1:
            raise ValueError(f"max_anchors must be >= 1, got {max_anchors}")
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        registration = check_registration(registration or self.registration)
        B, S, _, H, W = images.shape
        hw = (H // self.cfg.patch_size, W // self.cfg.patch_size)
        dev = images.device
        clock = _StageClock(dev)
        with self._amp(dev):
            tokens = self.aggregator.embed(images, chunk=chunk)  # [B, S, h·w, C]
        clock.lap("embed")
        anchors, labels, partners = self.select_anchors(tokens, max_anchors, anchor_points)
        N = anchors.shape[1]
        supports = support_views(anchors, S)  # [B, S − N]
        b_idx = torch.arange(B, device=dev)[:, None]
        anchor_tokens = tokens if N == S else tokens[b_idx, anchors]  # anchors == arange(S) when N == S
        support_tokens = tokens[b_idx, supports]
        del tokens  # the two gathers are copies: keep one set of every view's tokens, not two
        clock.lap("select")
        mode = "none"
        if supports.shape[1] > 0:
            mode = "identity"
            if self.zpressor is not None:
                mode = "zpressor"
                index, mask = cluster_table(labels, supports, N)
                with self._amp(dev):
                    anchor_tokens = self.zpressor(anchor_tokens, support_tokens, index, mask)
                clock.lap("zpressor")

        # anchors: trunk (recording the global blocks' keys/values when there are supports to register)
        with self._amp(dev):
            trunk = self.aggregator.run(anchor_tokens, hw, record_context=supports.shape[1] > 0)
        clock.lap("trunk")
        anchor_maps = self._dense_heads(trunk, (H, W), points=points, gaussians=gaussians)
        clock.lap("heads")
        cam_tokens = torch.empty(B, S, 2 * self.cfg.embed_dim, device=dev)
        cam_tokens[b_idx, anchors] = self._camera_tokens(trunk)
        context = trunk.context
        del trunk

        maps: dict[str, Tensor] = {}
        for name, value in anchor_maps.items():
            if name == "gaussians":
                continue
            maps[name] = torch.empty((B, S) + value.shape[2:], dtype=value.dtype, device=dev)
            maps[name][b_idx, anchors] = value

        # registration pass: support views attend to the anchors' recorded keys/values only
        pair = registration == "pair" and partners is not None
        for i in range(0, supports.shape[1], chunk):
            views = supports[:, i : i + chunk]
            view_context = PairContext(context, partners[b_idx, views], N) if pair else context
            with self._amp(dev):
                reg = self.aggregator.run(
                    support_tokens[:, i : i + chunk],
                    hw,
                    has_reference=False,
                    context=view_context,
                    context_per_view=pair,
                )
            clock.lap("registration_trunk")
            for name, value in self._dense_heads(reg, (H, W), points=points, gaussians=False).items():
                maps[name][b_idx, views] = value
            cam_tokens[b_idx, views] = self._camera_tokens(reg)
            del reg
            clock.lap("registration_heads")

        with self._fp32(dev):
            kv_index = anchors if supports.shape[1] > 0 else None
            pose_enc = self.camera_head(cam_tokens, kv_index)[-1]
        clock.lap("camera_head")
        return InferenceOutput(
            pose_enc=pose_enc,
            depth=maps["depth"][..., 0],
            depth_conf=maps["depth_conf"],
            world_points=maps.get("world_points"),
            world_points_conf=maps.get("world_points_conf"),
            gaussian_raw=anchor_maps.get("gaussians"),
            anchors=anchors,
            labels=labels,
            compression=mode,
            stage_seconds={k: round(v, 4) for k, v in clock.seconds.items()},
        )
