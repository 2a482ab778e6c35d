"""Shared fixtures: float64 mode, the shared benchmark data; one cache for
the whole test run.

Every compiled program goes into one persistent compilation cache for the
run (shared by the in-process tests, the scripts they start and, under
pytest-xdist, every worker), so that a program compiled once is not
compiled again by a later test or process: the tests build the same small
models many times over, through separate closures that JAX's in-memory
cache does not share. The data caches of the loaders go there too
(``GLOCAL_JAX_CACHE``), never into the user's home. A test that checks
caching itself gives its own folders.
"""

import os
import tempfile

import jax
import pytest


def _run_cache_dir() -> str:
  """A folder of this test run, the same in every xdist worker."""
  run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
  if run is None:
    return tempfile.mkdtemp(prefix="glocal_jax_tests_")
  path = os.path.join(tempfile.gettempdir(), f"glocal_jax_tests_{run}")
  os.makedirs(path, exist_ok=True)
  return path


def pytest_configure(config):
  del config
  if "GLOCAL_JAX_TEST_CACHE" not in os.environ:
    os.environ["GLOCAL_JAX_TEST_CACHE"] = _run_cache_dir()
  root = os.environ["GLOCAL_JAX_TEST_CACHE"]
  os.environ["GLOCAL_JAX_CACHE"] = root  # the scripts' caches, inherited
  jax.config.update("jax_compilation_cache_dir", os.path.join(root, "xla"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

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


