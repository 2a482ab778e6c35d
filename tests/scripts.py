"""Runs an experiment script's ``main`` in this process, as its command line
would, and returns what a subprocess would: exit status, stdout, stderr.

A script started as a process imports JAX and compiles its programs anew
(the persistent cache saves XLA's compilation but not tracing and lowering);
in process, JAX's in-memory caches carry over from test to test, which makes
most script tests several times faster. What stays a subprocess, and why,
is said where it is: several processes (``jax.distributed``), a device count
other than the test run's (JAX fixes it when it starts), signals (Ctrl-C),
a fresh process (``glocal_jax.load_model`` with nothing in memory) and a
script that starts its children on its own stdout (``scaling.py``).

Each run sees a fresh script: the flags that the script and the modules it
imports from ``experiments/`` define are removed afterwards, with those
modules, and the flags left are reset to their defaults, so one run's flags
never leak into the next. ``sys.argv``, ``sys.path``, the working folder
(the project root, as for the subprocesses) and the JAX settings a script may
change (its compilation cache) are restored.
"""

import contextlib
import io
import os
import runpy
import subprocess
import sys
import traceback

from absl import app
from absl import flags
import jax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = os.path.join(ROOT, "experiments")
# The settings of JAX that a script may change (cli.use_compilation_cache).
JAX_SETTINGS = ("jax_compilation_cache_dir",
                "jax_persistent_cache_min_compile_time_secs",
                "jax_persistent_cache_min_entry_size_bytes")


def _is_experiment_module(module) -> bool:
  path = getattr(module, "__file__", None) or ""
  return os.path.dirname(os.path.abspath(path)) == EXPERIMENTS


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
  """``python experiments/NAME ARGS...``, in process: its exit status (0 when
  ``main`` returns, the ``sys.exit`` code otherwise, 1 with the traceback on
  stderr for an uncaught exception), stdout and stderr."""
  path = os.path.join(EXPERIMENTS, name)
  app.define_help_flags()  # once per process: absl defines them once
  flags_before = set(flags.FLAGS)
  modules_before = set(sys.modules)
  saved = (list(sys.argv), list(sys.path), os.getcwd(),
           {k: getattr(jax.config, k) for k in JAX_SETTINGS})
  out, err = io.StringIO(), io.StringIO()
  status = 0
  sys.argv = [path, *args]
  os.chdir(ROOT)
  try:
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
      try:
        runpy.run_path(path, run_name="__main__")
      except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (
            0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
          print(e.code, file=sys.stderr)
      except BaseException:  # pylint: disable=broad-except
        traceback.print_exc()
        status = 1
  finally:
    for flag in set(flags.FLAGS) - flags_before:
      delattr(flags.FLAGS, flag)
    flags.FLAGS.unparse_flags()
    for module in set(sys.modules) - modules_before:
      if _is_experiment_module(sys.modules[module]):
        del sys.modules[module]
    sys.argv[:], sys.path[:] = saved[0], saved[1]
    os.chdir(saved[2])
    for k, v in saved[3].items():
      jax.config.update(k, v)
  return subprocess.CompletedProcess([sys.executable, path, *args], status,
                                     out.getvalue(), err.getvalue())


def run_script_process(name: str, *args: str,
                       env: dict | None = None) -> subprocess.CompletedProcess:
  """``python experiments/NAME ARGS...`` as a process of its own, in the
  project root (for the cases the module docstring names)."""
  return subprocess.run(
      [sys.executable, os.path.join(EXPERIMENTS, name), *args],
      capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
