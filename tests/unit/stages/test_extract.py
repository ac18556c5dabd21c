"""Extraction mechanics: streaming writer, parallel decode, reuse of unchanged videos, corrupt media."""

import json
import os

import cv2
import numpy as np
import pytest

from vad.config import DataParams
from vad.data.store import NpyAppender
from vad.errors import CorruptMediaError
from vad.stages import extract

PARAMS = DataParams(dataset="toy", image_size=16, channels=1)


def _video(path, frames, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    writer.release()


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "ds"
    for i, split in enumerate(["train", "train", "test", "test"]):
        _video(root / split / f"v{i}.avi", 12 + i, seed=i)
    return root


def test_npy_appender_writes_a_loadable_array_of_unknown_length(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (7, 5, 4, 3), dtype=np.uint8)
    writer = NpyAppender(tmp_path / "a.npy", (5, 4, 3))
    for frame in frames:
        writer.append(frame)
    assert writer.close() == 7
    assert np.array_equal(np.load(tmp_path / "a.npy"), frames)
    assert np.array_equal(np.load(tmp_path / "a.npy", mmap_mode="r")[3], frames[3])


def test_parallel_and_serial_extraction_give_identical_stores(dataset, tmp_path):
    extract.run(PARAMS, dataset, tmp_path / "serial", workers=1)
    extract.run(PARAMS, dataset, tmp_path / "parallel", workers=2)
    a, b = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("serial", "parallel"))
    assert a == b and [v["frames"] for v in a["videos"]] == [12, 13, 14, 15]
    for video in a["videos"]:
        serial, parallel = (np.load(tmp_path / d / video["path"]) for d in ("serial", "parallel"))
        assert np.array_equal(serial, parallel)


def test_rerun_reuses_unchanged_videos_and_redoes_changed_ones(dataset, tmp_path, caplog):
    out = tmp_path / "store"
    extract.run(PARAMS, dataset, out)
    before = {p.name: p.stat().st_ino for p in (out / "frames").iterdir()}
    _video(dataset / "test" / "v3.avi", 9, seed=42)  # changed source
    caplog.set_level("INFO")
    result = extract.run(PARAMS, dataset, out)
    after = {p.name: p.stat().st_ino for p in (out / "frames").iterdir()}
    assert "reusing 3 unchanged videos" in caplog.text
    assert all(after[n] == before[n] for n in ("train_v0.npy", "train_v1.npy", "test_v2.npy"))
    assert np.load(out / "frames" / "test_v3.npy").shape[0] == 9 and result.metrics["frames"] == 12 + 13 + 14 + 9
    # other settings invalidate everything
    extract.run(DataParams(dataset="toy", image_size=32, channels=1), dataset, out)
    assert np.load(out / "frames" / "train_v0.npy").shape == (12, 32, 32, 1)


def test_store_bytes_depend_on_source_content_only(dataset, tmp_path):
    """The same data elsewhere, copied later (other paths and mtimes), gives a byte-identical store."""
    import os
    import shutil

    copy = shutil.copytree(dataset, tmp_path / "elsewhere" / "copy", copy_function=shutil.copyfile)
    for path in copy.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    extract.run(PARAMS, dataset, tmp_path / "a")
    extract.run(PARAMS, copy, tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files), files


def test_truncated_video_names_the_file_and_frame(dataset, tmp_path):
    path = dataset / "test" / "v2.avi"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "store"
    with pytest.raises(CorruptMediaError, match=r"v2.avi: decoding stopped at frame \d+ of 14"):
        extract.run(PARAMS, dataset, out)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_skip_corrupt_skips_and_reports_the_video(dataset, tmp_path, caplog):
    (dataset / "test" / "v2.avi").write_bytes(os.urandom(2048))
    result = extract.run(PARAMS, dataset, tmp_path / "store", skip_corrupt=True)
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert [v["id"] for v in manifest["videos"]] == ["train_v0", "train_v1", "test_v3"]
    assert result.metrics["skipped_videos"] == 1 and "skipped 1 corrupt videos: test_v2" in caplog.text
    assert not (tmp_path / "store" / "frames" / "test_v2.npy").exists()


def test_corrupt_image_in_the_middle_of_a_sequence(tmp_path):
    from vad.data.decode import iter_frames

    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), np.full((8, 8), 100 + i, np.uint8))
    paths[2].write_bytes(b"not a png")
    frames = iter_frames(tmp_path, (8, 8), 1, tuple(paths))
    assert next(frames)[0, 0, 0] == 100 and next(frames)[0, 0, 0] == 101
    with pytest.raises(CorruptMediaError, match=r"frame 2 of .*2.png is corrupt"):
        next(frames)
