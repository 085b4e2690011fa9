"""Shared pytest fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

#: the shared corpora (../shared/datasets from the project root, or $SERKIT_SHARED_DATASETS for a
#: checkout elsewhere, e.g. a git worktree); corpus tests skip without it
SHARED = Path(os.environ.get("SERKIT_SHARED_DATASETS")
              or Path(__file__).resolve().parents[1].parent / "shared" / "datasets")


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """Path of ``../shared/datasets``; skips the test when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared corpora not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session", autouse=True)
def _onnx_cache(tmp_path_factory):
    """ONNX exports made by runtime=auto during the tests (tiny random models, the default model)
    go to a folder of this session, not the user's cache (subprocesses inherit it)."""
    old = os.environ.get("SERKIT_ONNX_CACHE")
    os.environ["SERKIT_ONNX_CACHE"] = str(tmp_path_factory.mktemp("onnx_cache"))
    yield
    if old is None:
        os.environ.pop("SERKIT_ONNX_CACHE", None)
    else:
        os.environ["SERKIT_ONNX_CACHE"] = old
