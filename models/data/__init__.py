"""Procedural multi-view data with exact ground truth (the "Zeroverse" idea).

See :mod:`models.data.procedural` for the API.
"""

from models.data.kinds import KINDS, make_spec
from models.data.procedural import (
    ProceduralDataset,
    Scene,
    kind_for_seed,
    load_scene,
    make_batch,
    make_scene,
    make_target_views,
    save_scene,
)
from models.data.render import Views, render_views
from models.data.spec import SceneSpec

__all__ = [
    "KINDS",
    "ProceduralDataset",
    "Scene",
    "SceneSpec",
    "Views",
    "kind_for_seed",
    "load_scene",
    "make_batch",
    "make_scene",
    "make_spec",
    "make_target_views",
    "render_views",
    "save_scene",
]
