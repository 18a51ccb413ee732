"""Shared test set-up: Qt renders offscreen, and the evaluation data sets are found beside the project."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The evaluation data folder (../shared/data); tests that need it skip with the reason where it is absent."""
    if not DATA_ROOT.is_dir():
        pytest.skip(f"evaluation data not found at {DATA_ROOT}")
    return DATA_ROOT


@pytest.fixture
def user_data(tmp_path, monkeypatch):
    """An empty per-test user data folder, so the demo project is imported afresh and nothing leaks out."""
    home = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


@pytest.fixture
def one_thread():
    """One CPU thread for tests that train: they run beside other work on small machines, where threads only
    contend; torch's process-wide thread count is given back afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
