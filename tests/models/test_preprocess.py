"""Image loading (modes, bit depths, EXIF) and VGGT-style crop/pad preprocessing carrying intrinsics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from models.preprocess import ImageLoadError, list_images, load_image, preprocess_images
from renderer.conventions import project_points


def _gradient(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1).astype(np.uint8)


def test_crop_mode_sizes_follow_vggt():
    imgs = [np.zeros((300, 400, 3), np.uint8)]
    batch, (tr,) = preprocess_images(imgs, target_width=518)
    assert batch.shape == (1, 3, 392, 518) and tr.crop_top == 0  # 4:3 landscape → 392×518
    batch, (tr,) = preprocess_images([np.zeros((400, 300, 3), np.uint8)], target_width=518)
    assert batch.shape == (1, 3, 518, 518) and tr.resized_hw == (686, 518) and tr.crop_top == 84
    batch, _ = preprocess_images([np.zeros((480, 640, 3), np.uint8)], target_width=224)
    assert batch.shape == (1, 3, 168, 224)


def test_mixed_sizes_are_padded_white_and_centred():
    imgs = [_gradient(300, 400), _gradient(100, 400)]
    batch, trs = preprocess_images(imgs, target_width=224)
    assert batch.shape == (2, 3, 168, 224)
    t = trs[1]
    assert t.content_hw == (56, 224) and (t.pad_top, t.pad_left) == (56, 0)
    valid = t.valid_mask()
    assert valid.sum() == 56 * 224
    assert batch.dtype == torch.uint8  # made float a few views at a time inside the network
    assert torch.all(batch[1, :, ~torch.from_numpy(valid)] == 255)  # white padding
    assert batch[1, :, torch.from_numpy(valid)].min() < 128


def test_uint8_batch_holds_exactly_the_resized_pixels():
    from PIL import Image

    from models.preprocess import as_unit_float

    img = _gradient(300, 400)
    batch, _ = preprocess_images([img], target_width=224)
    want = np.asarray(Image.fromarray(img).resize((224, 168), Image.Resampling.BICUBIC), np.float32) / 255.0
    got = as_unit_float(batch[0]).permute(1, 2, 0).numpy()
    assert got.dtype == np.float32 and np.array_equal(got, want)  # k / 255, bit for bit
    same, _ = preprocess_images([img[:168, :224]], target_width=224)  # already the model size: as is
    assert np.array_equal(same[0].permute(1, 2, 0).numpy(), img[:168, :224])


def test_intrinsics_follow_resize_crop_and_pad():
    imgs = [_gradient(400, 300), _gradient(200, 600)]  # portrait (cropped) and wide (padded)
    _, trs = preprocess_images(imgs, target_width=224)
    pts = torch.tensor([[[0.3, -0.2, 4.0], [-0.1, 0.15, 3.0]]], dtype=torch.float64)
    eye = torch.eye(4, dtype=torch.float64)
    for tr in trs:
        H, W = tr.original_hw
        K = torch.tensor([[500.0, 0, W / 2], [0, 520.0, H / 2], [0, 0, 1]], dtype=torch.float64)
        uv_o, _ = project_points(pts, eye, K)
        uv_m, _ = project_points(pts, eye, tr.K_to_model(K))
        sy, sx = tr.resized_hw[0] / H, tr.resized_hw[1] / W
        expected = torch.stack(
            [uv_o[..., 0] * sx + tr.pad_left, uv_o[..., 1] * sy - tr.crop_top + tr.pad_top], -1
        )
        torch.testing.assert_close(uv_m, expected)
        torch.testing.assert_close(tr.K_to_original(tr.K_to_model(K)), K)


def test_float_tensor_input():
    batch, trs = preprocess_images(torch.rand(2, 3, 60, 80), target_width=112)
    assert batch.shape == (2, 3, 84, 112) and 0 <= batch.min() and batch.max() <= 1
    assert trs[0].original_hw == (60, 80)


def test_bad_inputs():
    with pytest.raises(ValueError, match="images is empty"):
        preprocess_images([], target_width=224)
    with pytest.raises(ValueError, match=r"images\[1\] must be a \[H, W, 3\] uint8 array"):
        preprocess_images([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8)], target_width=224)
    with pytest.raises(TypeError, match="list of uint8 arrays"):
        preprocess_images("a.png", target_width=224)
    with pytest.raises(ValueError, match="float \\[S, 3, H, W\\]"):
        preprocess_images(torch.zeros(2, 4, 8, 8), target_width=224)


def test_load_image_modes(tmp_path):
    rgb = _gradient(20, 30)
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    out = load_image(tmp_path / "gray.png")
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8 and (out[..., 0] == out[..., 2]).all()

    rgba = np.concatenate([rgb, np.full((20, 30, 1), 255, np.uint8)], -1)
    rgba[:5, :, 3] = 0  # transparent rows become white, as in VGGT
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = load_image(tmp_path / "rgba.png")
    assert (out[:5] == 255).all() and (out[5:] == rgb[5:]).all()

    gray16 = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100).astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    out = load_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(out[..., 0], np.round(gray16 / 65535 * 255).astype(np.uint8))

    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    out = load_image(tmp_path / "cmyk.jpg")
    assert out.shape == (20, 30, 3) and np.abs(out.astype(int) - rgb.astype(int)).mean() < 20

    Image.fromarray(rgb).convert("P").save(tmp_path / "pal.png")
    assert load_image(tmp_path / "pal.png").shape == (20, 30, 3)


def test_exif_rotation_is_applied(tmp_path):
    rgb = _gradient(20, 30)
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90° CW to display"
    im.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "rot.jpg")
    assert out.shape == (30, 20, 3)
    expected = np.asarray(Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_270))
    assert np.abs(out.astype(int) - expected.astype(int)).mean() < 10


def test_load_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "fake.png").write_bytes(b"definitely not a png")
    with pytest.raises(ImageLoadError, match="fake.png"):
        load_image(tmp_path / "fake.png")


def test_list_images_expands_folders_sorted(tmp_path):
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images([tmp_path])] == ["a.jpg", "b.png"]
