"""Shared fixtures: float64 mode, the shared benchmark data."""

import os

import jax
import pytest

DATA_ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def _x64_context():
  if hasattr(jax, "enable_x64"):  # jax >= 0.7
    return jax.enable_x64(True)
  from jax.experimental import enable_x64  # pylint: disable=g-import-not-at-top
  return enable_x64()


@pytest.fixture
def x64():
  """Runs the test with 64-bit JAX arrays (finite differences need them)."""
  with _x64_context():
    yield


def shared_data_dir(dataset: str) -> str:
  """``../shared/data/<dataset>`` or a skip saying it is absent."""
  path = os.path.normpath(os.path.join(DATA_ROOT, dataset))
  if not os.path.isdir(path):
    pytest.skip(f"{path} is absent (the shared benchmark data is not beside "
                "this checkout)")
  return path


