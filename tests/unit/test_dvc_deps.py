"""Each DVC stage depends on the code it runs: a test computes the stage module's project imports."""

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"

# Modules that decide how outputs are written or how errors read, never what a stage computes: an edit there
# must not re-run the pipeline.
NOT_RESULTS = {"vad/__init__.py", "vad/errors.py", "vad/atomic.py", "vad/stages/__init__.py", "vad/network.py",
               "vad/workers.py"}


def _module_file(name: str) -> Path | None:
    base = SRC / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[Path]:
    """Project modules that `path` imports, anywhere in the file but under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and getattr(block.test, "id", None) == "TYPE_CHECKING" for node in ast.walk(block)}
    found: set[Path] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for name in names:
            if name.split(".")[0] == "vad" and (file := _module_file(name)) is not None:
                found.add(file)
    return found


def _closure(start: Path) -> set[Path]:
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_imports(path))
    return seen


def _stages() -> list[tuple[str, dict]]:
    document = yaml.safe_load((REPO / "dvc.yaml").read_text())
    return list(document["stages"].items())


@pytest.mark.parametrize(("name", "stage"), _stages(), ids=[name for name, _ in _stages()])
def test_stage_deps_cover_every_project_module_the_stage_imports(name, stage):
    module = _module_file(f"vad.stages.{name}")
    assert module is not None, f"stage {name} has no module vad.stages.{name}"
    deps = [REPO / dep for dep in stage.get("deps", [])]
    missing = sorted(str(path.relative_to(SRC)) for path in _closure(module)
                     if str(path.relative_to(SRC)) not in NOT_RESULTS
                     and not any(path == dep or dep in path.parents for dep in deps))
    assert not missing, f"dvc.yaml stage {name} imports {missing} without listing them in its deps"


def test_the_import_scan_sees_lazy_imports_and_skips_type_only_ones(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from vad.pipeline_run import PipelineRun\n"
                      "def f():\n    from vad.scoring import score_clips\n")
    assert _imports(source) == {SRC / "vad" / "scoring.py"}
