"""Frozen configuration dataclasses for the network, and the built-in presets.

One :class:`ModelConfig` describes a whole network; its defaults are the released VGGT-1B model, so
``ModelConfig()`` is ``vggt-1b``. Sub-configs group the knobs of each part (patch embed, alternating trunk,
heads, ZPressor). A part that is ``None`` is absent from the network (and from its state_dict).

Presets (:data:`PRESETS`):

* ``vggt-1b``: the released checkpoint's architecture (1,256,537,516 parameters incl. the track head),
  input width 518. Loads ``model.pt`` / ``model.safetensors`` strictly.
* ``tiny``: a small configuration of the same code for CPU training and tests: width 128, patch 14,
  224-px input, 2 DINO blocks, 6 alternating layers, plus a Gaussian head and 2 ZPressor blocks
  (about 5.5 M parameters, ~22 MB in float32).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class PatchEmbedConfig:
    """DINOv2-with-registers ViT used as the per-view patch embedding."""

    img_size: int = 518  # size the learned pos-embed grid was trained for (518 / 14 = 37)
    depth: int = 24
    num_heads: int = 16
    num_registers: int = 4
    mlp_ratio: float = 4.0
    ln_eps: float = 1e-6  # DINOv2 uses 1e-6; the trunk uses PyTorch's default 1e-5


@dataclass(frozen=True)
class TrunkConfig:
    """The alternating frame/global attention trunk ("aggregator")."""

    depth: int = 24
    num_heads: int = 16
    num_registers: int = 4
    mlp_ratio: float = 4.0
    rope_freq: float = 100.0
    layerscale_init: float = 0.01
    #: aggregator layers the DPT heads read; the last one must be ``depth - 1`` (the camera head reads it)
    out_layers: tuple[int, ...] = (4, 11, 17, 23)


@dataclass(frozen=True)
class CameraHeadConfig:
    trunk_depth: int = 4
    num_heads: int = 16
    iterations: int = 4


@dataclass(frozen=True)
class DPTConfig:
    """A DPT dense head. ``out_channels`` are the four per-level widths after the 1×1 projections."""

    features: int = 256
    out_channels: tuple[int, int, int, int] = (256, 512, 1024, 1024)
    frames_chunk: int = 8  # frames per head call: bounds activation memory, no numerical effect


@dataclass(frozen=True)
class GaussianHeadConfig:
    """Gaussian head on DPT features: per pixel one Gaussian (see ``models.heads.gaussian_head``)."""

    dpt: DPTConfig = field(default_factory=DPTConfig)
    sh_degree: int = 0


@dataclass(frozen=True)
class ZPressorConfig:
    """ZPressor fusion blocks (anchor queries ← support keys/values) on the patch-embed tokens."""

    layers: int = 6
    num_heads: int = 1
    mlp_ratio: float = 4.0


@dataclass(frozen=True)
class ModelConfig:
    """The whole network. Defaults = the released VGGT-1B."""

    name: str = "vggt-1b"
    patch_size: int = 14
    embed_dim: int = 1024
    input_width: int = 518  # preprocessing resizes images to this width (VGGT's "crop" mode)
    patch_embed: PatchEmbedConfig = field(default_factory=PatchEmbedConfig)
    trunk: TrunkConfig = field(default_factory=TrunkConfig)
    camera_head: CameraHeadConfig | None = field(default_factory=CameraHeadConfig)
    depth_head: DPTConfig | None = field(default_factory=DPTConfig)
    point_head: DPTConfig | None = field(default_factory=DPTConfig)
    #: the released checkpoint carries a track head; onepass loads its weights but does not run it
    track_head: bool = True
    gaussian_head: GaussianHeadConfig | None = None
    zpressor: ZPressorConfig | None = None

    def __post_init__(self) -> None:
        if self.embed_dim % self.trunk.num_heads or (self.embed_dim // self.trunk.num_heads) % 4:
            raise ValueError(
                f"embed_dim={self.embed_dim} must split into trunk.num_heads={self.trunk.num_heads} heads "
                "whose size is a multiple of 4 (2D RoPE)"
            )
        if self.embed_dim % self.patch_embed.num_heads:
            raise ValueError(
                f"embed_dim={self.embed_dim} is not divisible by "
                f"patch_embed.num_heads={self.patch_embed.num_heads}"
            )
        layers = self.trunk.out_layers
        if len(layers) != 4 or list(layers) != sorted(set(layers)) or layers[-1] != self.trunk.depth - 1:
            raise ValueError(
                "trunk.out_layers must be 4 increasing layer indices ending at "
                f"depth-1={self.trunk.depth - 1}, "
                f"got {layers}"
            )
        if self.camera_head is None:
            raise ValueError("camera_head is required: every reconstruction needs cameras")
        if self.input_width % self.patch_size:
            raise ValueError(
                f"input_width={self.input_width} must be a multiple of patch_size={self.patch_size}"
            )

    @property
    def num_patch_grid(self) -> int:
        """Side of the square patch grid the patch-embed pos-embed was trained for."""
        return self.patch_embed.img_size // self.patch_size

    def with_(self, **changes) -> ModelConfig:
        """A copy with some fields replaced (configs are frozen)."""
        return replace(self, **changes)


VGGT_1B = ModelConfig()

_TINY_DPT = DPTConfig(features=32, out_channels=(32, 64, 64, 64), frames_chunk=2)

TINY = ModelConfig(
    name="tiny",
    patch_size=14,
    embed_dim=128,
    input_width=224,
    patch_embed=PatchEmbedConfig(img_size=224, depth=2, num_heads=2, num_registers=4),
    trunk=TrunkConfig(depth=6, num_heads=2, num_registers=4, out_layers=(1, 3, 4, 5)),
    camera_head=CameraHeadConfig(trunk_depth=1, num_heads=4, iterations=4),
    depth_head=_TINY_DPT,
    point_head=_TINY_DPT,
    track_head=False,
    gaussian_head=GaussianHeadConfig(dpt=_TINY_DPT, sh_degree=0),
    zpressor=ZPressorConfig(layers=2, num_heads=2),
)

#: Built-in presets by name.
PRESETS: dict[str, ModelConfig] = {"vggt-1b": VGGT_1B, "tiny": TINY}


def get_config(preset: str | ModelConfig) -> ModelConfig:
    """Look a preset up by name (or pass a config through). Raises ``ValueError`` naming the choices."""
    if isinstance(preset, ModelConfig):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    return PRESETS[preset]
