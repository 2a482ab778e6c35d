"""``.npz`` checkpoints of a training run (no pickle), one generation back.

A checkpoint holds the parameter pytree (its arrays, and its containers as
JSON, so that dicts, lists, tuples and dtypes come back as they were), the
PRNG key, extra arrays, and a JSON document with the config, phase, epoch
and metrics history. :func:`save`
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
from typing import Any, Optional
import uuid

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
    params: parameter pytree (the containers and dtypes saved).
    key: the run's PRNG key (raw ``uint32`` key data), or None.
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
                     values: np.ndarray, shape: tuple[int, int],
                     item_ids: Optional[np.ndarray] = None,
                     user_ids: Optional[np.ndarray] = None) -> dict:
  """``{"name", "shape", "ratings", "sha256"}`` of training triplets and,
  when given, the raw ids of the rows and columns (two files with the same
  matrix under other ids are other data), to tell on resume whether a
  checkpoint was trained on the same data."""
  digest = hashlib.sha256()
  for array, dtype in ((items, np.int32), (users, np.int32),
                       (values, np.float32)):
    digest.update(np.ascontiguousarray(array, dtype).tobytes())
  for ids in (item_ids, user_ids):
    if ids is not None:
      ids = np.asarray(ids)
      digest.update(ids.dtype.str.encode())
      digest.update(np.ascontiguousarray(ids).tobytes())
  return {"name": name, "shape": [int(s) for s in shape],
          "ratings": int(np.asarray(items).size),
          "sha256": digest.hexdigest()}


# --- Pytrees to named arrays and back. ---
#
# A checkpoint stores each leaf as ``params/<i>`` and the tree's containers
# as JSON (``structure``): ``{"dict": [[key, node], ...]}`` (keys str or int),
# ``{"list": [...]}``, ``{"tuple": [...]}``, ``{"none": null}`` or
# ``{"leaf": i, "dtype": name}``. Dtypes NumPy cannot store (bfloat16 and
# the other ml_dtypes) are stored as unsigned integers of their width and
# viewed back. Older checkpoints (no ``structure``) name leaves by path.

_NATIVE_KINDS = "biufc"


def _encode(tree: Any, leaves: list) -> Any:
  if isinstance(tree, dict):
    bad = [k for k in tree if not isinstance(k, (str, int))]
    if bad:
      raise TypeError(f"checkpoint keys must be str or int, got {bad[0]!r}.")
    return {"dict": [[k, _encode(v, leaves)] for k, v in tree.items()]}
  if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
    kind = "list" if isinstance(tree, list) else "tuple"
    return {kind: [_encode(v, leaves) for v in tree]}
  if tree is None:
    return {"none": None}
  if hasattr(tree, "dtype") or isinstance(tree, (int, float, bool,
                                                 np.number)):
    array = np.asarray(tree)
    dtype = array.dtype
    if dtype.kind not in _NATIVE_KINDS:
      if dtype.kind == "V" and dtype.itemsize in (1, 2, 4, 8):
        array = array.view(np.dtype(f"u{dtype.itemsize}"))
      else:
        raise TypeError(f"cannot checkpoint a leaf of dtype {dtype}.")
    leaves.append(array)
    return {"leaf": len(leaves) - 1, "dtype": jnp.dtype(dtype).name}
  raise TypeError(
      f"cannot checkpoint a {type(tree).__name__}: checkpoints hold pytrees "
      "of dicts, lists, tuples and arrays (convert other nodes, e.g. with "
      "dataclasses.asdict, or restore them into a template).")


def _decode(node: Any, leaves: dict[str, np.ndarray]) -> Any:
  if "dict" in node:
    return {k: _decode(v, leaves) for k, v in node["dict"]}
  if "list" in node:
    return [_decode(v, leaves) for v in node["list"]]
  if "tuple" in node:
    return tuple(_decode(v, leaves) for v in node["tuple"])
  if "none" in node:
    return None
  array = leaves[f"params/{node['leaf']}"]
  dtype = jnp.dtype(node["dtype"])
  if array.dtype != dtype:
    array = array.view(dtype)
  return jnp.asarray(array)


def _insert(tree: dict, parts: list[str], value: np.ndarray) -> None:
  for part in parts[:-1]:
    tree = tree.setdefault(part, {})
  tree[parts[-1]] = value


def _lists(tree):
  """Older checkpoints: dicts keyed "0".."k" back into lists."""
  if not isinstance(tree, dict):
    return jnp.asarray(tree)
  if tree and all(k.isdigit() for k in tree):
    return [_lists(tree[str(i)]) for i in range(len(tree))]
  return {k: _lists(v) for k, v in tree.items()}


def _contents(params: Any, key: Optional[jax.Array], meta: dict,
              arrays: Optional[dict[str, np.ndarray]]) -> dict:
  """What a checkpoint file holds, as host arrays, taken now.

  Raises:
    TypeError: something in ``params`` cannot be stored and restored as it
      is (a node that is not a dict, list or tuple; a dtype NumPy cannot
      hold), or ``meta`` is not JSON.
  """
  leaves = []
  structure = _encode(jax.device_get(params), leaves)
  contents = {f"arrays/{k}": np.asarray(v) for k, v in (arrays or {}).items()}
  contents.update({f"params/{i}": x for i, x in enumerate(leaves)})
  if key is not None:
    if jax.dtypes.issubdtype(getattr(key, "dtype", None),
                             jax.dtypes.prng_key):
      raise TypeError("pass the raw key data of a typed PRNG key "
                      "(jax.random.key_data(key)).")
    contents["key"] = np.asarray(key)
  # NaN stays NaN (an NDCG with no user of two test ratings is undefined):
  # Python's json reads it back, so a resumed run sees the same history.
  try:
    contents["meta"] = np.asarray(json.dumps(meta))
  except TypeError as e:
    raise TypeError(f"checkpoint meta must be JSON: {e}") from None
  contents["structure"] = np.asarray(json.dumps(structure))
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


def save(directory: str, params: Any, key: Optional[jax.Array], meta: dict,
         arrays: Optional[dict[str, np.ndarray]] = None) -> str:
  """Writes ``directory/checkpoint.npz``, keeping the last one as
  ``checkpoint.prev.npz``; returns the path.

  Args:
    directory: created if missing.
    params: a pytree of dicts (str or int keys), lists, tuples, None and
      arrays of any dtype (bfloat16 included); :func:`load` gives it back
      with the same containers and dtypes.
    key: raw PRNG key data (``jax.random.PRNGKey``), or None.
    meta: JSON-able dict.
    arrays: extra NumPy arrays.

  Raises:
    TypeError: before anything is written, when ``params`` or ``meta``
      could not be restored as given.

  Examples:
    >>> import tempfile, jax.numpy as jnp
    >>> from glocal_jax import checkpoint
    >>> folder = tempfile.mkdtemp()
    >>> tree = {"layers": ({"w": jnp.ones((2, 2), jnp.bfloat16)},), "0": [1.0]}
    >>> _ = checkpoint.save(folder, tree, None, {"epoch": 3})
    >>> back = checkpoint.load(folder)
    >>> type(back.params["layers"]).__name__, back.params["layers"][0]["w"].dtype
    ('tuple', dtype(bfloat16))
    >>> back.params["0"], back.meta["epoch"], back.key
    ([Array(1., dtype=float32)], 3, None)
  """
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
    leaves = {n: f[n] for n in f.files if n.startswith("params/")}
    extra = {n[len("arrays/"):]: f[n] for n in f.files
             if n.startswith("arrays/")}
    meta = json.loads(str(f["meta"]))
    key = jnp.asarray(f["key"]) if "key" in f.files else None
    if "structure" in f.files:
      params = _decode(json.loads(str(f["structure"])), leaves)
    else:  # written before the structure was stored
      tree = {}
      for name, value in leaves.items():
        _insert(tree, name.split("/")[1:], value)
      params = _lists(tree)
  return Checkpoint(params, key, meta, extra, path)


def exists(directory: str) -> bool:
  """Whether ``directory`` holds a checkpoint (readable or not)."""
  return any(os.path.isfile(os.path.join(directory, name))
             for name in (FILENAME, PREVIOUS))


def _names(tree: Any) -> list[str]:
  """Each leaf's path as ``"0/w"``: dict keys, attribute names (NamedTuple
  and dataclass fields) and sequence indices alike."""
  def part(entry):
    for attr in ("key", "name", "idx"):
      if hasattr(entry, attr):
        return str(getattr(entry, attr))
    return str(entry)
  return ["/".join(part(e) for e in path) for path, _ in
          jax.tree_util.tree_flatten_with_path(tree)[0]]


def restore(template: Any, params: Any) -> Any:
  """``params`` (as :func:`load` read them) in the containers of
  ``template`` (e.g. ``jax.eval_shape`` of the initialiser: any pytree,
  NamedTuples and dataclasses included), with its dtypes. Leaves are
  matched by path (``"0/w"`` is ``params[0]["w"]`` and ``template[0].w``).

  Raises:
    ValueError: a leaf of the template has no array of its path and shape
      in ``params`` (the message names the first), or ``params`` has more.
  """
  want, treedef = jax.tree.flatten(template)
  by_name = dict(zip(_names(params), jax.tree.leaves(params)))
  names = _names(template)
  out = []
  for name, w in zip(names, want):
    if name not in by_name:
      raise ValueError(f"{name}: the template's array is not in the "
                       f"checkpoint (it holds {sorted(by_name)}).")
    g = by_name[name]
    if tuple(np.shape(w)) != tuple(np.shape(g)):
      raise ValueError(f"{name}: the checkpoint's array is {np.shape(g)}, "
                       f"the template's {np.shape(w)}.")
    out.append(jnp.asarray(g, getattr(w, "dtype", None)))
  extra = sorted(set(by_name) - set(names))
  if extra:
    raise ValueError(f"the checkpoint holds arrays the template has not: "
                     f"{extra}.")
  return jax.tree.unflatten(treedef, out)


def load(directory: str, template: Any = None) -> Checkpoint:
  """The newest readable checkpoint in ``directory``.

  A damaged ``checkpoint.npz`` (truncated, a flipped byte, empty) falls back
  to ``checkpoint.prev.npz``, and :attr:`Checkpoint.damaged` says what was
  wrong with the newer file.

  Args:
    directory: the folder :func:`save` wrote.
    template: optional pytree to restore the parameters into
      (:func:`restore`).

  Raises:
    FileNotFoundError: ``directory`` holds no checkpoint (see
      :func:`exists`).
    CheckpointError: every checkpoint file there is damaged.
  """
  if not exists(directory):
    what = ("does not exist" if not os.path.exists(directory) else
            f"holds no {FILENAME}")
    raise FileNotFoundError(f"no checkpoint: {directory} {what}.")
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
    if template is not None:
      ckpt.params = restore(template, ckpt.params)
    return ckpt
  raise CheckpointError("; ".join(damaged) + ". No readable checkpoint is "
                        "left: delete the folder to start again.")
