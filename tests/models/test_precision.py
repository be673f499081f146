"""bfloat16 autocast on the CPU (``VGGT.cpu_bf16``): the trained network's outputs stay float32 and close to
the float32 reference, through every path (anchors, ZPressor fusion, registration, heads)."""

from __future__ import annotations

import torch

from models import load_model


def test_cpu_bf16_matches_float32_closely_with_the_trained_weights():
    from models.data.procedural import make_scene

    model = load_model("tiny", device="cpu")  # the built-in trained weights: realistic activations
    scene = make_scene(5, views=10, width=224, height=224, kind="objects")
    images = torch.from_numpy(scene.images).permute(0, 3, 1, 2).float()[None]
    seen: set[tuple[str, torch.dtype]] = set()
    watched = {
        "trunk": model.aggregator.global_blocks[0].mlp.fc1,
        "head": model.depth_head.scratch.output_conv2[0],
    }
    hooks = [
        module.register_forward_hook(lambda m, i, o, name=name: seen.add((name, o.dtype)))
        for name, module in watched.items()
    ]
    with torch.inference_mode():
        ref = model.infer(images, max_anchors=4)  # 4 anchors: fusion and registration both run
        model.cpu_bf16 = True
        try:
            low = model.infer(images, max_anchors=4)
        finally:
            model.cpu_bf16 = False
    for h in hooks:
        h.remove()
    # trunk and dense heads ran in bf16 when asked, in fp32 otherwise
    assert seen == {(n, d) for n in watched for d in (torch.float32, torch.bfloat16)}
    assert ref.compression == low.compression == "zpressor"
    for name in ("pose_enc", "depth", "depth_conf", "world_points", "gaussian_raw"):
        assert getattr(low, name).dtype == torch.float32, name
    rel = ((low.depth - ref.depth).abs() / ref.depth).flatten()
    assert 0 < rel.median() < 0.01 and rel.quantile(0.99) < 0.05
    assert (low.pose_enc - ref.pose_enc).abs().max() < 0.05  # translations ~1, quaternions, FoV in radians
    assert torch.equal(low.anchors, ref.anchors)
