from __future__ import annotations

from pathlib import Path

import pytest
from components.score.component import score
from kfp.dsl import Dataset, Metrics

from vad.config import parse_params
from vad.errors import DataLayoutError


def test_score_writes_scores_csv_at_the_output_dataset_path(record_run, frames, checkpoint, artifact, as_struct,
                                                            make_document):
    recorder = record_run("vad.stages.score", metrics={"score_frames_per_s": 120.0})
    model, scores, metrics = checkpoint("model"), artifact(Dataset, "scores"), artifact(Metrics, "metrics")

    score.python_func(params=as_struct(make_document()), frames=frames, model=model, scores=scores, metrics=metrics)

    [(args, _)] = recorder.calls
    assert args == (parse_params(make_document()), Path(frames.path), Path(model.path), Path(scores.path))
    assert metrics.metadata == {"score_frames_per_s": 120.0}
    assert scores.metadata["data_fingerprint"] == frames.metadata["data_fingerprint"]


def test_score_refuses_a_model_where_the_frame_store_belongs(record_run, checkpoint, artifact, make_document,
                                                             assert_one_line):
    recorder = record_run("vad.stages.score")
    with pytest.raises(DataLayoutError, match="input frames .* not a frame store") as error:
        score.python_func(params=make_document(), frames=checkpoint("model-a"), model=checkpoint("model-b"),
                          scores=artifact(Dataset, "scores"), metrics=artifact(Metrics, "metrics"))
    assert_one_line(error)
    assert recorder.calls == []
