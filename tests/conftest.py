"""Shared fixtures. Real data is read in place from ../shared/datasets (never copied into the repo);
a test whose data is missing is skipped with the reason."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from chaintrace.store.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("CHAINTRACE_DATASETS", REPO.parent / "shared" / "datasets"))


def dataset(*parts: str) -> Path:
    """Path of a file in ../shared/datasets, or skip the test saying which file is missing."""
    p = DATASETS.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"dataset file not available: {p} (set CHAINTRACE_DATASETS)")
    return p


@pytest.fixture
def ws(tmp_path) -> Workspace:
    """An empty workspace in a temporary directory."""
    return Workspace(tmp_path / "data")


# The intelligence registry is one directory shared by every workspace (default: under the user's data
# directory). Tests never touch the user's: the whole session points at a temporary directory, and each
# test at its own.
os.environ["CHAINTRACE_REGISTRY"] = tempfile.mkdtemp(prefix="chaintrace-registry-")


@pytest.fixture(autouse=True)
def _own_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINTRACE_REGISTRY", str(tmp_path / "registry"))
