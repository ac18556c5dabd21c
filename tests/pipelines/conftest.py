"""Pipeline fixtures: the repository root on sys.path (for `components` and `pipelines`).

The S3 and MLflow server fixtures come from tests/conftest.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
