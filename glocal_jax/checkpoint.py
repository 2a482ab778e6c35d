"""``.npz`` checkpoints of a training run (no pickle), one generation back.

A checkpoint holds the parameter pytree (leaves stored under their path,
e.g. ``params/autoencoder/0/w``), the PRNG key, extra arrays, and a JSON
document with the config, phase, epoch and metrics history. :func:`save`
writes a new checkpoint to a temporary file in the same folder, moves the
current ``checkpoint.npz`` to ``checkpoint.prev.npz`` and renames the new
file into place, so a reader never sees a half-written checkpoint and a
crash at any point leaves at least one complete one. :func:`load` reads the
newest readable generation and says when a newer one was damaged. Files get
the permissions of any other file the user creates (the umask applies).
:class:`Writer` writes them on a background thread, so that training goes
on while a checkpoint reaches the disk.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import uuid
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

FILENAME = "checkpoint.npz"
PREVIOUS = "checkpoint.prev.npz"


class CheckpointError(ValueError):
  """No readable checkpoint where one was found."""


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
    path: the file read.
    damaged: what was wrong with newer generations that could not be read
      (empty when the newest one was read).
  """
  params: Any
  key: jax.Array
  meta: dict
  arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  path: str = ""
  damaged: list[str] = dataclasses.field(default_factory=list)


def data_fingerprint(name: str, items: np.ndarray, users: np.ndarray,
                     values: np.ndarray, shape: tuple[int, int]) -> dict:
  """``{"name", "shape", "ratings", "sha256"}`` of training triplets, to
  tell on resume whether a checkpoint was trained on the same data."""
  digest = hashlib.sha256()
  for array, dtype in ((items, np.int32), (users, np.int32),
                       (values, np.float32)):
    digest.update(np.ascontiguousarray(array, dtype).tobytes())
  return {"name": name, "shape": [int(s) for s in shape],
          "ratings": int(np.asarray(items).size),
          "sha256": digest.hexdigest()}


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


def _contents(params: Any, key: jax.Array, meta: dict,
              arrays: Optional[dict[str, np.ndarray]]) -> dict:
  """What a checkpoint file holds, as host arrays, taken now."""
  contents = {f"arrays/{k}": np.asarray(v) for k, v in (arrays or {}).items()}
  contents.update({f"params/{_path_name(p)}": np.asarray(x)
                   for p, x in jax.tree_util.tree_flatten_with_path(params)[0]})
  contents["key"] = np.asarray(key)
  # NaN stays NaN (an NDCG with no user of two test ratings is undefined):
  # Python's json reads it back, so a resumed run sees the same history.
  contents["meta"] = np.asarray(json.dumps(meta))
  return contents


def _write(directory: str, contents: dict) -> str:
  """Writes ``contents`` as the new generation (see the module docstring)."""
  os.makedirs(directory, exist_ok=True)
  tmp = os.path.join(directory, f".checkpoint-{uuid.uuid4().hex}.npz")
  path = os.path.join(directory, FILENAME)
  try:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **contents)
      f.flush()
      os.fsync(f.fileno())
    if os.path.exists(path):
      os.replace(path, os.path.join(directory, PREVIOUS))
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return path


def save(directory: str, params: Any, key: jax.Array, meta: dict,
         arrays: Optional[dict[str, np.ndarray]] = None) -> str:
  """Writes ``directory/checkpoint.npz``, keeping the last one as
  ``checkpoint.prev.npz``; returns the path."""
  return _write(directory, _contents(params, key, meta, arrays))


class Writer:
  """:func:`save` on a background thread, one checkpoint at a time.

  :meth:`save` takes the parameters to the host and ``meta`` to JSON at
  once (later changes to either do not reach the file), waits for the
  previous checkpoint to be written, and returns while the new one is
  written. A failed write raises from the next :meth:`save` or from
  :meth:`wait`; leaving the ``with`` block waits for the last write.

  Example::

    with checkpoint.Writer() as writer:
      for epoch in ...:
        writer.save(directory, params, key, meta)
  """

  def __init__(self):
    self._executor = concurrent.futures.ThreadPoolExecutor(
        1, "glocal_jax-checkpoint")
    self._pending: Optional[concurrent.futures.Future] = None

  def save(self, directory: str, params: Any, key: jax.Array, meta: dict,
           arrays: Optional[dict[str, np.ndarray]] = None) -> None:
    contents = _contents(params, key, meta, arrays)
    self.wait()
    self._pending = self._executor.submit(_write, directory, contents)

  def wait(self) -> Optional[str]:
    """Waits for the checkpoint being written; returns its path (None when
    none was)."""
    pending, self._pending = self._pending, None
    return None if pending is None else pending.result()

  def __enter__(self) -> "Writer":
    return self

  def __exit__(self, *exc) -> None:
    try:
      self.wait()
    finally:
      self._executor.shutdown()


def _read(path: str) -> Checkpoint:
  with np.load(path, allow_pickle=False) as f:
    tree, extra = {}, {}
    for name in f.files:
      if name.startswith("params/"):
        _insert(tree, name.split("/")[1:], f[name])
      elif name.startswith("arrays/"):
        extra[name[len("arrays/"):]] = f[name]
    meta = json.loads(str(f["meta"]))
    key = jnp.asarray(f["key"])
  return Checkpoint(_lists(tree), key, meta, extra, path)


def load(directory: str) -> Optional[Checkpoint]:
  """The newest readable checkpoint in ``directory``; None when there is
  none.

  A damaged ``checkpoint.npz`` (truncated, a flipped byte, empty) falls back
  to ``checkpoint.prev.npz``, and :attr:`Checkpoint.damaged` says what was
  wrong with the newer file.

  Raises:
    CheckpointError: every checkpoint file there is damaged.
  """
  damaged = []
  for name in (FILENAME, PREVIOUS):
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
      continue
    try:
      ckpt = _read(path)
    except Exception as e:  # pylint: disable=broad-except
      # Damage surfaces as any of zipfile.BadZipFile, zlib.error, EOFError,
      # OSError, ValueError, KeyError or a JSON error, from numpy's reader.
      damaged.append(f"{path} is damaged ({type(e).__name__}: {e})")
      continue
    ckpt.damaged = damaged
    return ckpt
  if damaged:
    raise CheckpointError("; ".join(damaged) + ". No readable checkpoint is "
                          "left: delete the folder to start again.")
  return None
