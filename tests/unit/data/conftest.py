"""Tiny fake dataset trees in each layout's exact folder structure, as factory fixtures.

Frame i of every fake video has brightness 20 + 20 * i, so a decoded video shows whether its frames came
out in order. Each tree holds one video with unpadded frame names 0..10 (11 frames), so a lexical sort
(10 before 2) would be caught, and junk files (.DS_Store, ._*, Thumbs.db) a reader must ignore.

Trees and their labels (0-based frames):
    ucsd          UCSDped2/Train/Train001 (6 .tif), Train002 (5); Test/Test001 (6), Test002 (11 unpadded)
                  .m: Test001 [2:3, 5:6] -> 1,2,4,5; Test002 [4:11] -> 3..10
                  _gt masks: Test001 -> 1,2; Test002 -> 10
    frames        training/frames/01 (6), 02 (5); testing/frames/01 (6), 02 (11 unpadded)
                  <root>.mat gt: 01 [2 5; 3 6] -> 1,2,4,5; 02 [4; 11] -> 3..10
    avenue        training_videos/01.avi (6), 02.avi (5); testing_videos/01.avi (6), 02.avi (7)
                  1_label.mat -> 2,3; 2_label.mat -> 6
    shanghaitech  training/videos/01_001.avi (6), 02_001.avi (5); testing/frames/01_0014 (6), 01_0015
                  (11 unpadded); test_frame_mask: 01_0014 -> 1,2; 01_0015 -> 3..10
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

SIZE = (24, 32)


def _image(index: int, gray: bool) -> np.ndarray:
    value = min(20 + 20 * index, 250)
    if gray:
        return np.full(SIZE, value, np.uint8)
    image = np.empty((*SIZE, 3), np.uint8)
    image[:] = (value, value, value // 2 + 5)  # BGR, slightly tinted
    return image


def _write_frames(folder: Path, count: int, *, ext: str = "jpg", pad: int = 3, gray: bool = False) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"{index:0{pad}d}.{ext}"
        assert cv2.imwrite(str(path), _image(index, gray)), path
        paths.append(path)
    return paths


def _write_avi(path: Path, count: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (SIZE[1], SIZE[0]))
    assert writer.isOpened(), path
    for index in range(count):
        writer.write(_image(index, gray=False))
    writer.release()
    return path


def _cell(items: list[np.ndarray]) -> np.ndarray:
    """A 1xN numpy object array, which scipy.io.savemat writes as a MATLAB cell array."""
    cell = np.empty((1, len(items)), dtype=object)
    for index, item in enumerate(items):
        cell[0, index] = item
    return cell


def _masks(count: int, abnormal: set[int]) -> np.ndarray:
    masks = []
    for index in range(count):
        mask = np.zeros(SIZE, np.uint8)
        if index in abnormal:
            mask[3:5, 7:9] = 1
        masks.append(mask)
    return _cell(masks)


def _junk(folder: Path) -> None:
    (folder / ".DS_Store").write_bytes(b"\x00junk")
    (folder / "._001.tif").write_bytes(b"\x00appledouble")
    (folder / "._01.avi").write_bytes(b"\x00appledouble")
    (folder / "Thumbs.db").write_bytes(b"\x00junk")


@pytest.fixture(scope="session")
def write_frames():
    """write_frames(folder, count, ext="jpg", pad=3, gray=False) -> frame paths."""
    return _write_frames


@pytest.fixture(scope="session")
def write_avi():
    """write_avi(path, count) -> path: an MJPG .avi of `count` frames."""
    return _write_avi


@pytest.fixture(scope="session")
def cell():
    """cell(list_of_arrays) -> a numpy object array that savemat writes as a 1xN cell."""
    return _cell


@pytest.fixture(scope="session")
def masks():
    """masks(count, abnormal_indices) -> a 1xcount cell of HxW masks, set on the abnormal frames."""
    return _masks


UCSD_M = """TestVideoFile = {};
% Test001: two ranges
TestVideoFile{end+1}.gt_frame = [2:3, 5:6];
% TestVideoFile{end+1}.gt_frame = [1:2];  a commented-out line
TestVideoFile{end+1}.gt_frame = [4:11];
"""


def _make_ucsd(root: Path, *, labels: str | None = "m") -> Path:
    """UCSDped2 tree under `root`; labels "m" (UCSDped2.m), "bmp" (_gt masks), "both" or None."""
    dataset = root / "UCSDped2"
    _write_frames(dataset / "Train" / "Train001", 6, ext="tif", gray=True)
    _write_frames(dataset / "Train" / "Train002", 5, ext="tif", gray=True)
    _write_frames(dataset / "Test" / "Test001", 6, ext="tif", gray=True)
    _write_frames(dataset / "Test" / "Test002", 11, ext="tif", pad=0, gray=True)
    _junk(dataset / "Train")
    _junk(dataset / "Test")
    _junk(dataset / "Train" / "Train001")
    if labels in ("m", "both"):
        (dataset / "Test" / "UCSDped2.m").write_text(UCSD_M)
    if labels in ("bmp", "both"):
        for name, count, abnormal in (("Test001", 6, {1, 2}), ("Test002", 11, {10})):
            for index, mask in enumerate(_masks(count, abnormal)[0]):
                folder = dataset / "Test" / f"{name}_gt"
                folder.mkdir(parents=True, exist_ok=True)
                assert cv2.imwrite(str(folder / f"{index + 1:03d}.bmp"), mask * 255)
            _junk(dataset / "Test" / f"{name}_gt")
    return root


def _make_frames(root: Path, *, mat: bool = True) -> Path:
    """Liu et al. frame-folder tree at `root`, with `<root name>.mat` when `mat`."""
    _write_frames(root / "training" / "frames" / "01", 6, gray=True)
    _write_frames(root / "training" / "frames" / "02", 5, gray=True)
    _write_frames(root / "testing" / "frames" / "01", 6, gray=True)
    _write_frames(root / "testing" / "frames" / "02", 11, pad=0, gray=True)
    _junk(root / "training" / "frames")
    _junk(root / "testing" / "frames" / "01")
    if mat:
        gt = _cell([np.array([[2, 5], [3, 6]]), np.array([[4], [11]])])
        scipy.io.savemat(root / f"{root.name}.mat", {"gt": gt})
    return root


def _make_avenue(root: Path, *, labels: bool = True) -> Path:
    """CUHK Avenue tree at `root`, with ground_truth_demo/testing_label_mask/<N>_label.mat when `labels`."""
    _write_avi(root / "training_videos" / "01.avi", 6)
    _write_avi(root / "training_videos" / "02.avi", 5)
    _write_avi(root / "testing_videos" / "01.avi", 6)
    _write_avi(root / "testing_videos" / "02.avi", 7)
    _junk(root / "training_videos")
    _junk(root / "testing_videos")
    if labels:
        folder = root / "ground_truth_demo" / "testing_label_mask"
        folder.mkdir(parents=True)
        scipy.io.savemat(folder / "1_label.mat", {"volLabel": _masks(6, {2, 3})})
        scipy.io.savemat(folder / "2_label.mat", {"volLabel": _masks(7, {6})})
        _junk(folder)
    return root


def _make_shanghaitech(root: Path, *, masks: bool = True) -> Path:
    """ShanghaiTech tree at `root`, with testing/test_frame_mask/*.npy when `masks`."""
    _write_avi(root / "training" / "videos" / "01_001.avi", 6)
    _write_avi(root / "training" / "videos" / "02_001.avi", 5)
    _write_frames(root / "testing" / "frames" / "01_0014", 6)
    _write_frames(root / "testing" / "frames" / "01_0015", 11, pad=0)
    _junk(root / "training" / "videos")
    _junk(root / "testing" / "frames")
    _junk(root / "testing" / "frames" / "01_0015")
    (root / "testing" / "test_pixel_mask").mkdir(parents=True)
    np.save(root / "testing" / "test_pixel_mask" / "01_0014.npy", np.zeros((6, *SIZE), np.uint8))
    if masks:
        folder = root / "testing" / "test_frame_mask"
        folder.mkdir(parents=True)
        np.save(folder / "01_0014.npy", np.array([0, 1, 1, 0, 0, 0], np.int64))
        np.save(folder / "01_0015.npy", np.array([0] * 3 + [1] * 8, np.int64))
    return root


@pytest.fixture(scope="session")
def make_ucsd():
    return _make_ucsd


@pytest.fixture(scope="session")
def make_frames():
    return _make_frames


@pytest.fixture(scope="session")
def make_avenue():
    return _make_avenue


@pytest.fixture(scope="session")
def make_shanghaitech():
    return _make_shanghaitech
