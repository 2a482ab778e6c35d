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
from glocal_jax.data.container import DataFormatError, MissingDataError


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


def _cache_path(path: str, key: str) -> str:
  stat = os.stat(path)
  digest = hashlib.sha1(key.encode()).hexdigest()[:10]
  return os.path.join(
      os.path.dirname(os.path.abspath(path)),
      f".{os.path.basename(path)}.glocal_jax-{CACHE_VERSION}-{stat.st_size}-"
      f"{stat.st_mtime_ns}-{digest}.npz")


def cached(path: str, key: str, read) -> dict:
  """``read()``'s arrays, or those cached for this file's size, mtime and
  ``key``; the cache is written beside the file when its folder is
  writable (older caches of the file are removed)."""
  cache = _cache_path(path, key)
  if os.path.isfile(cache):
    try:
      with np.load(cache, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
    except Exception:  # pylint: disable=broad-except
      pass  # a damaged cache is re-parsed and overwritten
  arrays = read()
  prefix = cache.split(".glocal_jax-")[0] + ".glocal_jax-"
  try:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(cache), suffix=".npz")
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **arrays)
    os.replace(tmp, cache)
    for old in glob.glob(glob.escape(prefix) + "*.npz"):
      if old != cache:
        os.remove(old)
  except OSError:
    pass  # a read-only data folder: no cache
  return arrays


def read_ratings(path: str, *, columns: Sequence[int] = (0, 1, 2),
                 kinds: Sequence[str] = ("id", "id", "number"),
                 delimiter: Optional[str] = None,
                 header: Optional[bool] = None, netflix: bool = False,
                 cache: bool = True) -> RawRatings:
  """Parses ``user item rating`` columns of a file (cached).

  Args:
    path: the file.
    columns: 0-based fields of the user id, the item id and the rating.
    kinds: :func:`glocal_jax.data.parsing.read_table`'s kinds of the three.
    delimiter, header: see :func:`glocal_jax.data.parsing.read_table` (None:
      detected).
    netflix: a Netflix Prize ``combined_data_*.txt`` file instead.
    cache: read and write the parsed-array cache.

  Raises:
    MissingDataError: no such file.
    DataFormatError: naming the file and line.
  """
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
  arrays = cached(path, key, read) if cache else read()
  return RawRatings(path, arrays["users"], arrays["items"], arrays["values"],
                    arrays["lines"])
