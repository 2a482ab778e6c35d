"""Where a result came from: the block every script writes into its JSON.

``provenance()`` records the command line (and the environment variables
that change what JAX does: ``XLA_FLAGS``, ``JAX_*``), the git commit (and
whether the
working tree had uncommitted changes), the versions of Python and the
numerical packages, the devices JAX sees, the CPU (model, family, vector
extension, cores),
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


# Vector extensions, widest first: the first one the CPU has is recorded.
VECTOR_EXTENSIONS = (("avx512f", "AVX-512"), ("avx2", "AVX2"),
                     ("avx", "AVX"), ("asimd", "NEON"))


def cpu() -> dict:
  """The CPU's model name, x86 family and model numbers and widest vector
  extension (``/proc/cpuinfo``; the platform's guess elsewhere), and the
  core count, with the cores this process may run on (``used_cores``: fewer
  under ``taskset``). Two VMs of one model name can differ in all but the
  name, and in speed with them."""
  info = {"model": platform.processor() or platform.machine(),
          "cores": os.cpu_count()}
  if hasattr(os, "sched_getaffinity"):
    info["used_cores"] = len(os.sched_getaffinity(0))
  fields = {}
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if not line.strip():
          break  # the first processor's block is enough
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
  except OSError:
    return info
  flags = set(fields.get("flags", fields.get("Features", "")).split())
  info.update({
      "model": fields.get("model name", info["model"]),
      "family": fields.get("cpu family"), "model_number": fields.get("model"),
      "vector": next((name for flag, name in VECTOR_EXTENSIONS
                      if flag in flags), None)})
  return info


def command(argv=None) -> str:
  """The command line as a shell would take it, script path relative to
  the repository root (``python experiments/NAME.py ...``)."""
  argv = list(sys.argv if argv is None else argv)
  script = os.path.abspath(argv[0])
  if script.startswith(ROOT + os.sep):
    script = os.path.relpath(script, ROOT)
  return shlex.join(["python", script, *argv[1:]])


def environment() -> dict:
  """The environment variables set that change what JAX and XLA do
  (``XLA_FLAGS``, ``JAX_*``): part of the command that made a result."""
  return {k: v for k, v in sorted(os.environ.items())
          if k == "XLA_FLAGS" or k.startswith("JAX_")}


def provenance() -> dict:
  """The provenance block of a result file written by this process."""
  devices = jax.devices()
  status = _git("status", "--porcelain", "--untracked-files=no")
  env = environment()
  return {
      "command": command(),
      **({"environment": env} if env else {}),
      "argv": list(sys.argv),
      "git_commit": _git("rev-parse", "HEAD"),
      "git_dirty": None if status is None else bool(status),
      "python": platform.python_version(),
      "versions": {p: _version(p) for p in PACKAGES},
      "device": {"platform": devices[0].platform,
                 "kind": devices[0].device_kind, "count": len(devices),
                 "processes": jax.process_count()},
      "cpu": cpu(),
      "started": _STARTED.isoformat(timespec="seconds"),
  }
