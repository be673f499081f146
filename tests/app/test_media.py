"""Upload building blocks on real files: names, zips (limits, bombs), video frame sampling."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from app.core.errors import ApiError
from app.services.archive import ZipLimits, extract_zip
from app.services.media import check_image, safe_name, sniff_kind, unique_names
from app.services.video import extract_frames, sample_rate
from tests.app.helpers import image_bytes, zip_bytes


def test_safe_and_unique_names() -> None:
    assert safe_name("../../etc/passwd", 0, ".png") == "passwd.png"
    assert safe_name("C:\\photos\\IMG 001.JPG", 1, ".jpg") == "IMG_001.jpg"
    assert safe_name("", 7, ".webp") == "image_007.webp"
    assert safe_name("..", 2, ".png") == "image_002.png"
    assert safe_name("photo.jpeg", 0, ".jpg") == "photo.jpeg"
    assert unique_names(["a.png", "a.jpg", "A.png", "b.png", "a_1.png"]) == [
        "a.png",
        "a_1.jpg",
        "A_2.png",
        "b.png",
        "a_1_1.png",
    ]


def test_sniff_kind(tmp_path: Path) -> None:
    cases = {
        "z": zip_bytes({"a.png": b"x"}),
        "p": image_bytes(),
        "j": image_bytes(fmt="JPEG"),
        "w": image_bytes(fmt="WEBP"),
        "t": b"plain text",
    }
    kinds = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        kinds[name] = sniff_kind(tmp_path / name)
    assert kinds == {"z": "zip", "p": "image", "j": "image", "w": "image", "t": "unknown"}


def test_check_image_reads_the_whole_file(tmp_path: Path) -> None:
    p = tmp_path / "ok.webp"
    p.write_bytes(image_bytes(40, 30, fmt="WEBP"))
    info = check_image(p, "ok.webp", max_pixels=10_000)
    assert (info.width, info.height, info.format) == (40, 30, "WEBP")
    jpeg = image_bytes(200, 150, fmt="JPEG")
    p.write_bytes(jpeg[: len(jpeg) * 2 // 3])
    with pytest.raises(ApiError, match="'cut.jpg' is a corrupt or truncated image") as e:
        check_image(p, "cut.jpg", max_pixels=10**6)
    assert e.value.status == 422


def test_zip_limits(tmp_path: Path) -> None:
    limits = ZipLimits(max_entries=2, max_total_bytes=10 << 20, max_ratio=50)
    z = tmp_path / "three.zip"
    z.write_bytes(zip_bytes({"a.png": b"1", "b.png": b"2", "c.png": b"3"}))
    with pytest.raises(ApiError, match="3 files, more than 2") as e:
        extract_zip(z, "three.zip", tmp_path / "out", limits)
    assert e.value.status == 413

    buf = io.BytesIO()  # 8 MiB of zeros deflate to a few KiB: a zip bomb by ratio
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.png", b"\0" * (8 << 20))
    z.write_bytes(buf.getvalue())
    with pytest.raises(ApiError, match="compressed over 50x") as e:
        extract_zip(z, "bomb.zip", tmp_path / "out2", limits)
    assert e.value.status == 413

    z.write_bytes(b"PK\x03\x04 but not really a zip")
    with pytest.raises(ApiError, match="not a readable zip") as e:
        extract_zip(z, "junk.zip", tmp_path / "out3", limits)
    assert e.value.status == 422


def test_zip_entries_land_inside_dest(tmp_path: Path) -> None:
    z = tmp_path / "ok.zip"
    z.write_bytes(zip_bytes({"s/b.png": b"B", "s/a.png": b"A", ".hidden": b"h", "s/.DS_Store": b"d"}))
    got = extract_zip(z, "ok.zip", tmp_path / "out", ZipLimits(10, 1 << 20, 100))
    assert [str(e.name) for e in got] == ["s/a.png", "s/b.png"]
    assert [e.path.read_bytes() for e in got] == [b"A", b"B"]
    assert all(e.path.parent == tmp_path / "out" for e in got)


def write_video(path: Path, frames: int, fps: float, size: tuple[int, int] = (64, 48)) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 255, (frames, size[1], size[0], 3), dtype=np.uint8)
    iio.imwrite(path, data, plugin="FFMPEG", fps=fps, macro_block_size=16)


def test_sample_rate() -> None:
    assert sample_rate(10.0, 2.0, 100) == 2.0
    assert sample_rate(100.0, 2.0, 50) == 0.5  # 200 frames at 2 fps would pass the cap: spread 50 over 100 s
    assert sample_rate(None, 3.0, 5) == 3.0


def test_video_frames_at_fps_and_capped(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    write_video(video, frames=30, fps=10)  # 3 s
    frames = extract_frames(video, "clip.mp4", tmp_path / "f", fps=2, max_frames=100, max_pixels=10**6)
    assert [p.name for p in frames] == [f"frame_{i:04d}.png" for i in range(6)]
    with Image.open(frames[0]) as im:
        assert im.size == (64, 48)
    capped = extract_frames(video, "clip.mp4", tmp_path / "g", fps=10, max_frames=4, max_pixels=10**6)
    assert len(capped) == 4
    with pytest.raises(ApiError, match="more than 100 pixels") as e:
        extract_frames(video, "clip.mp4", tmp_path / "h", fps=2, max_frames=4, max_pixels=100)
    assert e.value.status == 413
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\0\0\0\x18ftypmp42" + b"garbage" * 50)
    with pytest.raises(ApiError, match="'broken.mp4' is not a video") as e:
        extract_frames(broken, "broken.mp4", tmp_path / "i", fps=2, max_frames=4, max_pixels=10**6)
    assert e.value.status == 422


def _odd_images(folder: Path) -> list[Path]:
    """Images whose pixels need converting: gray, 16-bit, RGBA, palette, CMYK JPEG, EXIF-rotated JPEG."""
    rgb = np.stack(
        [*np.meshgrid(np.arange(30) * 8, np.arange(20) * 12, indexing="xy"), np.full((20, 30), 90)], -1
    )
    rgb = rgb.astype(np.uint8)
    rgba = np.concatenate([rgb, np.full((20, 30, 1), 255, np.uint8)], -1)
    rgba[:5, :, 3] = 0
    saved = {
        "gray.png": Image.fromarray(rgb).convert("L"),
        "g16.png": Image.fromarray((np.arange(600, dtype=np.uint16).reshape(20, 30) * 100).astype(np.uint16)),
        "rgba.png": Image.fromarray(rgba, "RGBA"),
        "pal.png": Image.fromarray(rgb).convert("P"),
        "cmyk.jpg": Image.fromarray(rgb).convert("CMYK"),
    }
    for name, im in saved.items():
        im.save(folder / name)
    rotated = Image.fromarray(rgb)
    exif = rotated.getexif()
    exif[0x0112] = 6  # "rotate 90° CW to display"
    rotated.save(folder / "rot.jpg", exif=exif)
    return [folder / n for n in (*saved, "rot.jpg")]


def test_pixels_decoded_by_the_check_are_the_models_own(tmp_path: Path) -> None:
    """The synchronous route hands the check's decoded pixels to the worker instead of the files: they
    must be exactly what the model's own loader makes of the files."""
    from app.services.pipeline import decode_loaded
    from models.preprocess import load_image

    for path in _odd_images(tmp_path):
        info = check_image(path, path.name, max_pixels=10**6, decode=decode_loaded)
        expected = load_image(path)
        assert info.pixels.dtype == np.uint8 and info.pixels.shape == expected.shape, path.name
        np.testing.assert_array_equal(info.pixels, expected, err_msg=path.name)
    assert check_image(path, path.name, max_pixels=10**6).pixels is None  # nothing kept unless asked


def test_an_upload_keeps_decoded_pixels_only_within_the_cap(tmp_path: Path, monkeypatch) -> None:
    from app.core.config import Settings
    from app.services import ingest
    from app.services.pipeline import decode_loaded

    sources = []
    for i in range(3):
        p = tmp_path / f"in{i}.png"
        p.write_bytes(image_bytes(40, 30))
        sources.append((p, f"view{i}.png"))
    names, pixels = ingest._place_images(sources, tmp_path / "a", Settings(), decode_loaded)
    assert names == ["view0.png", "view1.png", "view2.png"] and [a.shape for a in pixels] == [(30, 40, 3)] * 3
    for p, _ in sources:  # the first call moved them into place
        p.write_bytes(image_bytes(40, 30))
    monkeypatch.setattr(ingest, "DECODED_MAX_BYTES", 2 * 40 * 30 * 3)  # room for two of the three
    names, pixels = ingest._place_images(sources, tmp_path / "b", Settings(), decode_loaded)
    assert len(names) == 3 and pixels is None and len(list((tmp_path / "b").iterdir())) == 3
