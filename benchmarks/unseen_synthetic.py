"""Fresh normal footage of the synthetic demo's scene, for label-free checks of a demo model.

    python benchmarks/unseen_synthetic.py --params params.yaml --videos 6 --out runs/unseen
    python benchmarks/pseudo_anomalies.py --frames runs/unseen/frames --model models/train --unseen

The generator draws each video from its own stream of the seed (`vad.data.synth`), so training videos
`synth.train_videos + 1 ...` of the same seed are new pedestrians on the same background: normal footage the
demo never trained on, made without a label. Writes OUT/videos (the `videos` layout, those videos as `train/`,
the test split as the generator makes it) and OUT/frames (extracted with the params' `data`, as `vad extract`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vad.config import load_params
from vad.data.synth import generate
from vad.stages import extract


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--videos", type=int, default=6, help="fresh normal videos to make")
    parser.add_argument("--out", type=Path, required=True, help="an empty or missing folder")
    args = parser.parse_args()
    if args.videos < 1:
        raise SystemExit(f"--videos must be at least 1, got {args.videos}")
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out} is not empty: give a new folder")
    params = load_params(args.params)
    seen = params.synth.train_videos
    videos = args.out / "videos"
    generate(params.synth.model_copy(update={"train_videos": seen + args.videos}), videos)
    for index in range(seen):  # the ones the demo trained on
        (videos / "train" / f"{index + 1:02d}.avi").unlink()
    extract.run(params.data, videos, args.out / "frames")
    print(f"{args.videos} unseen normal videos: {args.out / 'frames'}")


if __name__ == "__main__":
    main()
