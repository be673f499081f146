"""Strict checkpoint loading: VGGT-1B's exact keys and shapes without allocating 5 GB; error reports."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.build import load_model
from models.checkpoint import CheckpointMismatchError, assign_weights, read_state_dict, save_weights
from models.config import VGGT_1B
from models.vggt import VGGT

KEY_LIST = Path(__file__).parent / "data" / "vggt_1b_state_dict_keys.txt"


def reference_shapes() -> dict[str, tuple[int, ...]]:
    """The released checkpoint's keys and shapes (generated from the official code, see the file's header)."""
    out = {}
    for line in KEY_LIST.read_text().splitlines()[1:]:
        key, shape = line.split("\t")
        out[key] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
    return out


@pytest.fixture(scope="module")
def meta_vggt():
    with torch.device("meta"):
        return VGGT(VGGT_1B)


def test_vggt1b_architecture_has_exactly_the_checkpoint_keys_and_shapes(meta_vggt):
    ref = reference_shapes()
    mine = {k: tuple(v.shape) for k, v in meta_vggt.state_dict().items()}
    assert len(ref) == 1797
    assert sorted(set(ref) - set(mine)) == []
    assert sorted(set(mine) - set(ref)) == []
    assert {k: (mine[k], ref[k]) for k in ref if mine[k] != ref[k]} == {}
    assert sum(torch.Size(s).numel() for s in mine.values()) == 1_256_537_516


def test_strict_assign_of_meta_state_dict(meta_vggt):
    sd = {k: torch.empty(s, device="meta") for k, s in reference_shapes().items()}
    assign_weights(meta_vggt, sd)
    assert meta_vggt.camera_head.poseLN_modulation[1].weight.shape == (6144, 2048)


def test_vggt1b_loads_lazily_from_a_real_pt_file(tmp_path):
    # Each tensor is a stride-0 view of one element: torch.save stores the 1-element storage, so the file is
    # tiny, and the mmap + assign path must not materialise 5 GB while loading it.
    sd = {k: torch.zeros(1).expand(s) for k, s in reference_shapes().items()}
    path = tmp_path / "model.pt"
    torch.save(sd, path)
    assert path.stat().st_size < 10_000_000
    model = load_model("vggt-1b", weights=path, device="cpu")
    info = model.weights_info
    assert info["source"] == "file" and info["format"] == "torch"
    assert info["tensors"] == 1797 and info["parameters"] == 1_256_537_516
    assert info["unused_parameters"] == {"track_head": 65_941_396}
    assert model.aggregator.frame_blocks[23].attn.qkv.weight.shape == (3072, 1024)


def test_wrong_architecture_lists_missing_unexpected_and_mismatched(tmp_path, micro_model):
    path = save_weights(micro_model, tmp_path / "micro.safetensors")
    with pytest.raises(CheckpointMismatchError, match="missing keys") as err:
        load_model("vggt-1b", weights=path, device="cpu")
    msg = str(err.value)
    assert "unexpected keys (by module: " in msg and "zpressor " in msg  # micro has ZPressor, VGGT-1B has not
    assert any(k.startswith("gaussian_head.") for k in err.value.unexpected)
    assert "shape mismatches" in msg and "aggregator.camera_token: [1, 2, 1, 64] vs [1, 2, 1, 1024]" in msg
    assert "track_head " in msg  # VGGT-1B's track head is missing from the micro file
    assert any(k.startswith("track_head.") for k in err.value.missing)
    assert str(path) in msg


def test_safetensors_round_trip_reproduces_outputs(tmp_path, micro_model):
    from tests.models.conftest import MICRO, rand_images

    path = save_weights(micro_model, tmp_path / "w.safetensors", metadata={"preset": "micro"})
    loaded = load_model(MICRO, weights=path, device="cpu")
    assert loaded.weights_info["metadata"] == {"preset": "micro"}
    x = rand_images(2)
    with torch.inference_mode():
        a, b = micro_model(x), loaded(x)
    torch.testing.assert_close(a["depth"], b["depth"], rtol=0, atol=0)
    torch.testing.assert_close(a["pose_enc"], b["pose_enc"], rtol=0, atol=0)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        read_state_dict(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        read_state_dict(junk)
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="bad.safetensors"):
        read_state_dict(bad_st)
    with pytest.raises(ValueError, match="needs a local model.pt"):
        load_model("vggt-1b", device="cpu")
    with pytest.raises(ValueError, match="preset must be one of"):
        load_model("vggt-2b", device="cpu")
    with pytest.raises(ValueError, match="device"):
        load_model("tiny", device="tpu")


def test_half_precision_checkpoints_are_cast_to_float32(micro_model):
    from tests.models.conftest import MICRO

    sd = {k: v.to(torch.bfloat16) for k, v in micro_model.state_dict().items()}
    with torch.device("meta"):
        model = VGGT(MICRO)
    assign_weights(model, sd)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    w = micro_model.aggregator.camera_token
    torch.testing.assert_close(model.aggregator.camera_token, w.to(torch.bfloat16).float())
