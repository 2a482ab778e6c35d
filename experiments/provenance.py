"""Where a result came from: the block every script writes into its JSON.

``provenance()`` records the command line, the git commit (and whether the
working tree had uncommitted changes), the versions of Python and the
numerical packages, the devices JAX sees, the CPU model and core count,
and the start time. ``experiments/make_results.py`` renders each table's
command and machine from this block, never from text typed into it.
"""

import datetime
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys

import jax

PACKAGES = ("jax", "jaxlib", "jaxopt", "optax", "numpy", "scipy")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_STARTED = datetime.datetime.now(datetime.timezone.utc)


def _git(*args: str):
  try:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=30, check=True)
  except (OSError, subprocess.SubprocessError):
    return None
  return out.stdout.strip()


def _version(package: str):
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return None


def cpu_model() -> str:
  """The CPU's model name (``/proc/cpuinfo``), or the platform's guess."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def command(argv=None) -> str:
  """The command line as a shell would take it, script path relative to
  the repository root (``python experiments/NAME.py ...``)."""
  argv = list(sys.argv if argv is None else argv)
  script = os.path.abspath(argv[0])
  if script.startswith(ROOT + os.sep):
    script = os.path.relpath(script, ROOT)
  return shlex.join(["python", script, *argv[1:]])


def provenance() -> dict:
  """The provenance block of a result file written by this process."""
  devices = jax.devices()
  status = _git("status", "--porcelain", "--untracked-files=no")
  return {
      "command": command(),
      "argv": list(sys.argv),
      "git_commit": _git("rev-parse", "HEAD"),
      "git_dirty": None if status is None else bool(status),
      "python": platform.python_version(),
      "versions": {p: _version(p) for p in PACKAGES},
      "device": {"platform": devices[0].platform,
                 "kind": devices[0].device_kind, "count": len(devices),
                 "processes": jax.process_count()},
      "cpu": {"model": cpu_model(), "cores": os.cpu_count()},
      "started": _STARTED.isoformat(timespec="seconds"),
  }
