"""The real UCSD Ped2 in two layouts gives the same frame store: the shared `videos` copy, and a `frames`
copy (Liu et al. release: training/frames/01/000.jpg ..., ped2.mat) decoded from it here. Skipped where
../shared/data/ped2 is absent.
"""

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from vad.config import DataParams, Layout
from vad.stages import extract

# The real Ped2 sits beside the repository (../shared/data/ped2); VAD_PED2_DIR points elsewhere.
PED2 = Path(os.environ.get("VAD_PED2_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data" / "ped2")
pytestmark = pytest.mark.skipif(not ((PED2 / "labels.csv").is_file() and (PED2 / "ped2.mat").is_file()),
                                reason=f"real Ped2 not found at {PED2}")


def _decode_to_jpegs(video: Path, folder: Path) -> None:
    folder.mkdir(parents=True)
    capture = cv2.VideoCapture(str(video))
    assert capture.isOpened(), video
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        assert cv2.imwrite(str(folder / f"{index:03d}.jpg"), image)
        index += 1
    capture.release()
    assert index > 0, video


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    """{"videos": store, "frames": store}: Ped2 extracted at 32x32 grayscale from each layout."""
    base = tmp_path_factory.mktemp("ped2_layouts")
    copy = base / "ped2"
    for split, folder in (("train", "training"), ("test", "testing")):
        for video in sorted((PED2 / split).glob("*.mp4")):
            _decode_to_jpegs(video, copy / folder / "frames" / video.stem)
    shutil.copy(PED2 / "ped2.mat", copy / "ped2.mat")
    stores = {}
    for layout, source in ((Layout.VIDEOS, PED2), (Layout.FRAMES, copy)):
        stores[layout.value] = base / f"store_{layout.value}"
        extract.run(DataParams(dataset="ped2", format=layout, image_size=32, channels=1), source, stores[layout.value])
    return stores


def _manifest(store: Path) -> dict:
    return json.loads((store / "manifest.json").read_text())


def test_both_layouts_give_the_same_manifest_but_for_sources(stores):
    videos, frames = _manifest(stores["videos"]), _manifest(stores["frames"])
    assert videos["videos"][0]["source"] == "train/01.mp4" and frames["videos"][0]["source"] == "training/frames/01"
    for manifest in (videos, frames):
        for entry in manifest["videos"]:
            del entry["source"]
    assert videos == frames


def test_both_layouts_give_the_same_labels_and_frames(stores):
    for entry in _manifest(stores["videos"])["videos"]:
        if entry["labels"] is not None:
            labels = [np.load(store / entry["labels"]) for store in stores.values()]
            assert np.array_equal(*labels), entry["id"]
        first, second = (np.load(store / entry["path"], mmap_mode="r") for store in stores.values())
        # the JPEG copy differs from the video by compression noise only
        assert np.abs(first.astype(np.int16) - second).mean() < 2.0, entry["id"]


def test_frames_layout_has_the_published_counts(stores):
    store = stores["frames"]
    entries = _manifest(store)["videos"]
    train = [e for e in entries if e["split"] == "train"]
    test = [e for e in entries if e["split"] == "test"]
    assert (len(train), sum(e["frames"] for e in train)) == (16, 2550)
    assert (len(test), sum(e["frames"] for e in test)) == (12, 2010)
    assert [e["id"] for e in test] == [f"test_{n:02d}" for n in range(1, 13)]
    assert sum(int(np.load(store / e["labels"]).sum()) for e in test) == 1648
    first = np.load(store / test[0]["labels"])  # gt{1} = [61; 180], 1-based
    assert first[:60].sum() == 0 and first[60:].all()
