"""Reading rating files: parsed by :mod:`glocal_jax.data.parsing`, the
arrays cached, raw ids kept."""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import os
import tempfile
from typing import Optional, Sequence

import numpy as np

from glocal_jax.data import parsing
from glocal_jax.data.container import DataFormatError
from glocal_jax.data.container import MissingDataError


@dataclasses.dataclass
class RawRatings:
  """Ratings read from one file, raw ids not yet mapped to indices.

  Attributes:
    path: the file.
    users, items: raw ids (int64, or bytes for string ids).
    values: float32 ratings.
    lines: 1-based line number of each rating.
  """
  path: str
  users: np.ndarray
  items: np.ndarray
  values: np.ndarray
  lines: np.ndarray

  def take(self, index: np.ndarray) -> "RawRatings":
    return RawRatings(self.path, self.users[index], self.items[index],
                      self.values[index], self.lines[index])


CACHE_VERSION = 1


def cache_root() -> str:
  """Where glocal_jax caches: ``$GLOCAL_JAX_CACHE``, else
  ``$XDG_CACHE_HOME/glocal_jax``, else ``~/.cache/glocal_jax``."""
  return os.environ.get("GLOCAL_JAX_CACHE") or os.path.join(
      os.environ.get("XDG_CACHE_HOME")
      or os.path.join(os.path.expanduser("~"), ".cache"), "glocal_jax")


def default_cache_dir() -> str:
  """The parsed-array cache: ``cache_root()/parsed``."""
  return os.path.join(cache_root(), "parsed")


def _cache_prefix(path: str, cache_dir: str) -> str:
  """The cache files of ``path`` start with this: its absolute path's hash
  and its name, so that two files of one name never share a cache."""
  path = os.path.abspath(path)
  digest = hashlib.sha1(path.encode()).hexdigest()[:16]
  return os.path.join(cache_dir, f"{digest}-{os.path.basename(path)}-")


def _cache_path(path: str, key: str, cache_dir: str) -> str:
  stat = os.stat(path)
  digest = hashlib.sha1(key.encode()).hexdigest()[:10]
  return (f"{_cache_prefix(path, cache_dir)}{CACHE_VERSION}-{stat.st_size}-"
          f"{stat.st_mtime_ns}-{digest}.npz")


def cached(path: str, key: str, read, cache_dir: str) -> dict:
  """``read()``'s arrays, or those cached in ``cache_dir`` for this file's
  path, size, mtime and ``key``. The cache is written there (never beside
  the data) when the folder can be made and written; older caches of the
  same file are removed."""
  cache = _cache_path(path, key, cache_dir)
  if os.path.isfile(cache):
    try:
      with np.load(cache, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
    except Exception:  # pylint: disable=broad-except
      pass  # a damaged cache is re-parsed and overwritten
  arrays = read()
  try:
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **arrays)
    os.replace(tmp, cache)
    for old in glob.glob(glob.escape(_cache_prefix(path, cache_dir)) +
                         "*.npz"):
      if old != cache:
        os.remove(old)
  except OSError:
    pass  # an unwritable cache folder: no cache
  return arrays


def read_ratings(path: str, *, columns: Sequence[int] = (0, 1, 2),
                 kinds: Sequence[str] = ("id", "id", "number"),
                 delimiter: Optional[str] = None,
                 header: Optional[bool] = None, netflix: bool = False,
                 cache_dir: Optional[str] = None) -> RawRatings:
  """Parses ``user item rating`` columns of a file (cached).

  Args:
    path: the file.
    columns: 0-based fields of the user id, the item id and the rating.
    kinds: :func:`glocal_jax.data.parsing.read_table`'s kinds of the three.
    delimiter, header: see :func:`glocal_jax.data.parsing.read_table` (None:
      detected).
    netflix: a Netflix Prize ``combined_data_*.txt`` file instead.
    cache_dir: the parsed-array cache's folder (None:
      :func:`default_cache_dir`; ``"none"``: no cache). Never the data's
      folder, which may be shared or read-only.

  Raises:
    MissingDataError: no such file.
    DataFormatError: naming the file and line.
  """
  if os.path.isdir(path):
    raise MissingDataError(f"{path} is a folder, not a ratings file.")
  if not os.path.isfile(path):
    raise MissingDataError(f"{path} does not exist.")

  def read():
    try:
      if netflix:
        table = parsing.read_netflix(path)
      else:
        table = parsing.read_table(path, columns, kinds=kinds,
                                   delimiter=delimiter, header=header)
    except parsing.ParseError as e:
      raise DataFormatError(str(e)) from None
    users, items, values = table.columns
    return {"users": users, "items": items,
            "values": values.astype(np.float32), "lines": table.lines}

  key = f"{netflix}|{list(columns)}|{list(kinds)}|{delimiter!r}|{header!r}"
  if cache_dir is None:
    cache_dir = default_cache_dir()
  arrays = (read() if cache_dir.lower() == "none" else
            cached(path, key, read, cache_dir))
  return RawRatings(path, arrays["users"], arrays["items"], arrays["values"],
                    arrays["lines"])
