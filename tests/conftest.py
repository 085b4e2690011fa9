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
