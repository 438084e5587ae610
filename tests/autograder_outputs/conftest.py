"""Fixtures for the batch-layer tests."""
import pytest


@pytest.fixture
def trace(tmp_path, monkeypatch):
    path = tmp_path / "trace.txt"
    monkeypatch.setenv("FAKE_TRACE", str(path))
    return path
