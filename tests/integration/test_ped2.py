"""The real UCSD Ped2 (../shared/data/ped2, videos layout) through `vad extract`; skipped where absent."""

import os
from pathlib import Path

import numpy as np
import pytest

from vad.config import DataParams
from vad.data.store import FrameStore
from vad.stages import extract

# The real Ped2 sits beside the repository (../shared/data/ped2); VAD_PED2_DIR points elsewhere.
PED2 = Path(os.environ.get("VAD_PED2_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data" / "ped2")
pytestmark = pytest.mark.skipif(not (PED2 / "labels.csv").is_file(), reason=f"real Ped2 not found at {PED2}")


def test_ped2_extracts_with_the_published_counts(tmp_path):
    extract.run(DataParams(dataset="ped2", image_size=64, channels=1), PED2, tmp_path / "frames")
    store = FrameStore.open(tmp_path / "frames")
    train, test = store.split("train"), store.split("test")
    assert (len(train), sum(v.frames for v in train)) == (16, 2550)
    assert (len(test), sum(v.frames for v in test)) == (12, 2010)
    assert [v.frames for v in test] == [180, 180, 150, 180, 150, 180, 180, 180, 120, 150, 180, 180]
    assert sum(int(store.labels(v).sum()) for v in test) == 1648
    # UCSDped2.m: Test001 is abnormal on frames 61:180 (1-based), i.e. 60..179 0-based
    first = store.labels(test[0])
    assert first[:60].sum() == 0 and first[60:].all()
    assert np.asarray(store.frames(test[0])).shape == (180, 64, 64, 1)


def test_capping_decoder_threads_decodes_the_same_frames():
    # Parallel extraction gives each worker's H.264 decoder cores // workers threads; the frames must not
    # depend on it.
    from vad.data.decode import iter_frames

    video = PED2 / "test" / "01.mp4"
    capped = np.stack(list(iter_frames(video, (64, 64), 3, decode_threads=1)))
    default = np.stack(list(iter_frames(video, (64, 64), 3)))
    assert capped.shape == (180, 64, 64, 3)
    np.testing.assert_array_equal(capped, default)
