"""The ``Examples:`` in the library's docstrings run, as written."""

import doctest
import importlib
import os
import pkgutil

import pytest

import glocal_jax

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(glocal_jax.__path__, "glocal_jax."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
  """Each example runs as if pasted into a fresh interpreter: with no name
  of the module's own (its imports included) in scope."""
  module = importlib.import_module(name)
  result = doctest.testmod(module, globs={"__name__": "__main__"},
                           optionflags=doctest.ELLIPSIS
                           | doctest.NORMALIZE_WHITESPACE, verbose=False)
  assert result.failed == 0, f"{result.failed} example(s) failed in {name}"


def test_the_public_functions_have_examples():
  # The entry points a newcomer starts from show how they are called.
  for fn in (glocal_jax.local_kernel, glocal_jax.global_kernel,
             glocal_jax.kernel_layer, glocal_jax.rmse,
             glocal_jax.checkpoint.save, glocal_jax.train,
             glocal_jax.from_triplets):
    assert "Examples:" in (fn.__doc__ or "") or ">>>" in (
        importlib.import_module(fn.__module__).__doc__ or ""), fn.__name__


def test_the_research_page_runs():
  """docs/research.md's examples (fit, save and load, a Gaussian kernel,
  max pooling, a user-based model, early stopping, a bounded
  factorisation, an ensemble) run as written."""
  path = os.path.join(os.path.dirname(__file__), "..", "docs", "research.md")
  result = doctest.testfile(path, module_relative=False,
                            optionflags=doctest.ELLIPSIS
                            | doctest.NORMALIZE_WHITESPACE, verbose=False)
  assert result.attempted > 30 and result.failed == 0, result
