"""Shared fixtures: float64 mode, the shared benchmark data; one cache for
the whole test run.

Every compiled program goes into one persistent compilation cache for the
run, shared by the in-process tests, the scripts they start and the
pytest-xdist workers (which inherit ``GLOCAL_JAX_TEST_CACHE``), so that a
program compiled once is not compiled again by a later test or process:
the tests build the same small models many times over, through separate
closures that JAX's in-memory cache does not share. The loaders' parse
caches go there too (``GLOCAL_JAX_CACHE``), never into the user's home.
The folder is removed at the end, unless ``GLOCAL_JAX_TEST_CACHE`` named
one to keep (to rerun faster). A test of caching itself uses its own
folders.

The tests' programs are tiny, so their compilation is most of their time:
:data:`XLA_FLAGS` turns off LLVM's optimisation passes (XLA's own passes,
fusion among them, still run) and XLA's newer fusion emitters, whose
compilation takes 3 to 4 times the classic emitters' for these programs
(one fine-tuning epoch of the tiny model: 2.0 s against 0.6 s), through
``XLA_FLAGS``, which the workers and the scripts inherit; a test that sets
``XLA_FLAGS`` for a child starts from :data:`XLA_FLAGS`. An XLA flag that
the installed jaxlib does not know aborts the process that reads it, so
the second is tried in a child process first and left out if it fails.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import jax
import pytest

REQUIRED_XLA_FLAGS = "--xla_backend_optimization_level=0"
OPTIONAL_XLA_FLAGS = ("--xla_cpu_use_fusion_emitters=false",)


def _xla_flags() -> str:
  """The run's XLA flags: the required ones and the optional ones that this
  jaxlib knows (tried once per run; the workers inherit the answer)."""
  known = os.environ.get("GLOCAL_JAX_TEST_XLA_FLAGS")
  if known is None:
    flags = [REQUIRED_XLA_FLAGS]
    for flag in OPTIONAL_XLA_FLAGS:
      probe = subprocess.run(
          [sys.executable, "-c", "import jax; jax.devices()"],
          env={**os.environ, "XLA_FLAGS": f"{REQUIRED_XLA_FLAGS} {flag}"},
          capture_output=True, timeout=300, check=False)
      if probe.returncode == 0:
        flags.append(flag)
    known = " ".join(flags)
    os.environ["GLOCAL_JAX_TEST_XLA_FLAGS"] = known
  return known


XLA_FLAGS = _xla_flags()


def pytest_configure(config):
  flags_now = os.environ.get("XLA_FLAGS", "")
  if XLA_FLAGS not in flags_now:  # the workers inherit it
    os.environ["XLA_FLAGS"] = f"{flags_now} {XLA_FLAGS}".strip()
  root = os.environ.get("GLOCAL_JAX_TEST_CACHE")
  if root is None:
    root = tempfile.mkdtemp(prefix="glocal_jax_tests_")
    os.environ["GLOCAL_JAX_TEST_CACHE"] = root  # inherited by the workers
    config.glocal_jax_made_cache = root
  os.environ["GLOCAL_JAX_CACHE"] = root  # the scripts' caches, inherited
  jax.config.update("jax_compilation_cache_dir", os.path.join(root, "xla"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_unconfigure(config):
  made = getattr(config, "glocal_jax_made_cache", None)
  if made is not None:
    shutil.rmtree(made, ignore_errors=True)


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


