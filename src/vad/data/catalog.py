"""Public datasets that `fetch` downloads from their official pages, and the layout each one gives.

    <dest>/
      downloads/    the resolve_source cache (one unpacked archive per URL, shared by ped1 and ped2)
      <name>/       the folder to pass to `vad extract --format <layout>`: relative links into downloads/

ped1 and ped2 come from one UCSD archive; the `ucsd` layout expects `UCSDped2/{Train,Test}/...` under the root,
so the ped2 folder holds a single link `UCSDped2`. CUHK Avenue ships its videos and its frame masks as two
archives; the avenue folder links `training_videos/` and `testing_videos/` of the first and the unpacked
`ground_truth_demo/` of the second.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from vad.atomic import atomic_dir
from vad.config import Layout
from vad.data.sources import resolve_source
from vad.errors import DataError, DataLayoutError

__all__ = ["Archive", "Dataset", "DATASETS", "fetch"]

log = logging.getLogger(__name__)

UCSD_URL = "http://www.svcl.ucsd.edu/projects/anomaly/UCSD_Anomaly_Dataset.tar.gz"
AVENUE_URL = "http://www.cse.cuhk.edu.hk/leojia/projects/detectabnormal/Avenue_Dataset.zip"
AVENUE_GT_URL = "http://www.cse.cuhk.edu.hk/leojia/projects/detectabnormal/ground_truth_demo.zip"


@dataclass(frozen=True)
class Archive:
    """One archive of a dataset and where its content goes in the dataset folder.

    Attributes:
        url: Official download URL.
        sha256: Expected hex digest, or None where the authors publish none.
        pick: Sub-folder of the unpacked archive (below its single top folder) to use; "" for all of it.
        mount: Name of the link in the dataset folder; "" links each top entry of `pick` instead.
    """

    url: str
    sha256: str | None = None
    pick: str = ""
    mount: str = ""


@dataclass(frozen=True)
class Dataset:
    """A downloadable dataset: its archives and the layout `vad extract` reads it with."""

    layout: Layout
    archives: tuple[Archive, ...]
    description: str


# Neither the UCSD nor the CUHK page publishes a checksum, so sha256 stays None (downloads are not verified).
# Third-party digests, not checked here, that anomalib pins in its ucsd_ped.py / avenue.py:
#   UCSD_Anomaly_Dataset.tar.gz  2329af326951f5097fdd114c50e853957d3e569493a49d22fc082a9fd791915b
#   Avenue_Dataset.zip           fc9cb8432a11ca79c18aa180c72524011411b69d3b0ff27c8816e41c0de61531
#   ground_truth_demo.zip        60fec1728ec8f73a58aad3aeb5729d70a805a47e0b8eb4bf91ab67ef06386d77
DATASETS: dict[str, Dataset] = {
    "ped2": Dataset(Layout.UCSD, (Archive(UCSD_URL, pick="UCSDped2", mount="UCSDped2"),),
                    "UCSD Ped2: 16 train / 12 test clips, 240x360 grayscale TIFF frames (Mahadevan et al. 2010)"),
    "ped1": Dataset(Layout.UCSD, (Archive(UCSD_URL, pick="UCSDped1", mount="UCSDped1"),),
                    "UCSD Ped1: 34 train / 36 test clips, 158x238 grayscale TIFF frames (Mahadevan et al. 2010)"),
    "avenue": Dataset(Layout.AVENUE, (Archive(AVENUE_URL), Archive(AVENUE_GT_URL, mount="ground_truth_demo")),
                      "CUHK Avenue: 16 train / 21 test videos, 360x640 colour (Lu et al. 2013)"),
}


def fetch(name: str, dest: Path, *, progress: bool = False) -> Path:
    """Download dataset `name` into `dest` (once) and return the folder for `vad extract`.

    Args:
        name: A key of DATASETS (ped2, ped1, avenue).
        dest: Folder for the download cache and the dataset folder.
        progress: Show tqdm bars while downloading.

    Returns:
        `dest/<name>`, to read with `vad extract --format DATASETS[name].layout.value`.

    Raises:
        DataError: Unknown name, or a download that fails (see `resolve_source`).
        DataLayoutError: An archive no longer holds the expected folder.
    """
    dataset = DATASETS.get(name)
    if dataset is None:
        raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(sorted(DATASETS))}")
    dest = Path(dest).resolve()
    links: dict[str, Path] = {}
    for archive in dataset.archives:
        folder = resolve_source(archive.url, dest / "downloads", sha256=archive.sha256, progress=progress)
        picked = folder / archive.pick if archive.pick else folder
        if not picked.is_dir():
            raise DataLayoutError(f"the archive {archive.url} has no {archive.pick} folder (looked in {folder}); "
                                  f"its layout changed: unpack it by hand and pass the folder to `vad extract`")
        if archive.mount:
            links[archive.mount] = picked
        else:
            links.update({entry.name: entry for entry in sorted(picked.iterdir())
                          if not entry.name.startswith((".", "__MACOSX"))})
    target = dest / name
    with atomic_dir(target) as tmp:
        for link, path in links.items():
            # relative links keep working when `dest` is moved or mounted elsewhere
            (tmp / link).symlink_to(os.path.relpath(path, target), target_is_directory=path.is_dir())
    log.info("%s: ready in %s (read it with `vad extract --format %s`)", name, target, dataset.layout.value)
    return target
