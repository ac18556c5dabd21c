"""The Kubeflow pipeline: the DAG (vad_pipeline.py), its compiled YAML, and compile, local-run and submit helpers.

Run from the repository root (the folder holding `components/` and `pipelines/`), e.g. `vad pipeline compile`.
"""
