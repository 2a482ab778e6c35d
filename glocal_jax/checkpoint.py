"""Atomic ``.npz`` checkpoints of a training run (no pickle).

A checkpoint holds the parameter pytree (leaves stored under their path,
e.g. ``params/autoencoder/0/w``), the PRNG key, and a JSON document with the
config, phase, epoch and metrics history. It is written to a temporary file
in the same folder and renamed over ``checkpoint.npz``, so a reader never
sees a half-written checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

FILENAME = "checkpoint.npz"


@dataclasses.dataclass
class Checkpoint:
  """What :func:`load` returns.

  Attributes:
    params: parameter pytree (dicts and lists of jax arrays).
    key: the run's PRNG key (raw ``uint32`` key data).
    meta: JSON-able dict: ``config``, ``phase``, ``epoch``, ``history``,
      and whatever else the writer stored.
    arrays: extra NumPy arrays stored beside the parameters (e.g. the
      training ratings and raw ids, so the checkpoint alone can recommend).
  """
  params: Any
  key: jax.Array
  meta: dict
  arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def _path_name(path) -> str:
  parts = []
  for entry in path:
    if isinstance(entry, jax.tree_util.DictKey):
      parts.append(str(entry.key))
    elif isinstance(entry, jax.tree_util.SequenceKey):
      parts.append(str(entry.idx))
    else:
      raise TypeError(f"Unsupported pytree node {entry!r} in parameters.")
  return "/".join(parts)


def _insert(tree: dict, parts: list[str], value: np.ndarray) -> None:
  for part in parts[:-1]:
    tree = tree.setdefault(part, {})
  tree[parts[-1]] = value


def _lists(tree):
  """Turns dicts keyed "0".."k" back into lists."""
  if not isinstance(tree, dict):
    return jnp.asarray(tree)
  if tree and all(k.isdigit() for k in tree):
    return [_lists(tree[str(i)]) for i in range(len(tree))]
  return {k: _lists(v) for k, v in tree.items()}


def save(directory: str, params: Any, key: jax.Array, meta: dict,
         arrays: Optional[dict[str, np.ndarray]] = None) -> str:
  """Writes ``directory/checkpoint.npz`` atomically; returns its path."""
  os.makedirs(directory, exist_ok=True)
  extra = {f"arrays/{k}": np.asarray(v) for k, v in (arrays or {}).items()}
  arrays = {f"params/{_path_name(p)}": np.asarray(x)
            for p, x in jax.tree_util.tree_flatten_with_path(params)[0]}
  arrays.update(extra)
  arrays["key"] = np.asarray(key)
  arrays["meta"] = np.asarray(json.dumps(meta))
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint-",
                             suffix=".npz")
  try:
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **arrays)
      f.flush()
      os.fsync(f.fileno())
    path = os.path.join(directory, FILENAME)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return path


def load(directory: str) -> Optional[Checkpoint]:
  """Reads ``directory/checkpoint.npz``; None when there is none."""
  path = os.path.join(directory, FILENAME)
  if not os.path.isfile(path):
    return None
  try:
    with np.load(path, allow_pickle=False) as f:
      tree, extra = {}, {}
      for name in f.files:
        if name.startswith("params/"):
          _insert(tree, name.split("/")[1:], f[name])
        elif name.startswith("arrays/"):
          extra[name[len("arrays/"):]] = f[name]
      meta = json.loads(str(f["meta"]))
      key = jnp.asarray(f["key"])
  except (OSError, ValueError, KeyError) as e:
    raise ValueError(f"{path} is not a readable glocal_jax checkpoint: {e}"
                     ) from e
  return Checkpoint(_lists(tree), key, meta, extra)
