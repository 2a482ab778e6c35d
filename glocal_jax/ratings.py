"""The ratings pytree: the observed entries of an items x users matrix.

GLocal-K's rating matrix ``R`` is items x users (``m x n``) and mostly empty
(ML-10M: 1.3% observed, Netflix: 1.2%). :class:`Ratings` stores only the
observed entries, as ``(item, user, value)`` triplets sorted by item then
user, with the matrix shape as static metadata, so that memory grows with
the data and never with ``m * n``. A ``value`` of 0 marks a padding entry
("0 = not rated", docs/model.md), so ratings must be positive.

``Ratings`` is a pytree (a registered dataclass): it passes through
``jax.jit``, ``jax.vmap`` and ``jax.tree.map`` like any array container.
Its arrays may live on the host (NumPy, as the loaders return them) or on a
device.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = Any  # NumPy or JAX array


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["items", "users", "values"],
                   meta_fields=["shape"])
@dataclasses.dataclass(frozen=True)
class Ratings:
  """Observed ratings of an ``(n_items, n_users)`` matrix.

  Attributes:
    items: ``(k,)`` int32 row (item) index of each entry, ascending.
    users: ``(k,)`` int32 column (user) index, ascending within an item.
    values: ``(k,)`` rating, in the float dtype it was given (float32 for
      integers; float64 under ``jax_enable_x64`` keeps every
      representation as exact as the dense model); 0 marks a padding
      entry.
    shape: ``(n_items, n_users)`` of the matrix (static).
  """
  items: Array
  users: Array
  values: Array
  shape: tuple[int, int]

  @property
  def nnz(self) -> int:
    """Number of entries, padding included."""
    return int(self.items.shape[-1])

  @property
  def mask(self) -> Array:
    """``(k,)`` 1.0 where the entry is a rating, 0.0 on padding."""
    return (self.values > 0).astype(self.values.dtype)

  def count(self) -> int:
    """Number of ratings (padding excluded), on the host."""
    return int(np.count_nonzero(np.asarray(self.values)))

  def density(self) -> float:
    """Share of the ``m * n`` cells that hold a rating."""
    return self.count() / (self.shape[0] * self.shape[1])

  def to_dense(self) -> jax.Array:
    """The ``(m, n)`` matrix, 0 where unrated (for small data and tests)."""
    dense = jnp.zeros(self.shape, jnp.asarray(self.values).dtype)
    return dense.at[self.items, self.users].add(self.values)

  def gather(self, matrix: Array) -> Array:
    """``matrix[items, users]``: a ``(m, n)`` matrix read at the entries."""
    return matrix[self.items, self.users]

  def to_host(self) -> "Ratings":
    """A copy with NumPy arrays."""
    return jax.tree.map(np.asarray, self)

  def to_device(self, device=None) -> "Ratings":
    """A copy with JAX arrays on ``device`` (default: the default one)."""
    return jax.device_put(self, device)


def from_dense(matrix: Array) -> Ratings:
  """The non-zero entries of an ``(m, n)`` items x users matrix, on the host.

  Entries come in row-major order (sorted by item, then user), the order of
  ``np.nonzero``.
  """
  matrix = np.asarray(matrix)
  if matrix.ndim != 2:
    raise ValueError(f"expected a 2-D items x users matrix, got shape "
                     f"{matrix.shape}.")
  items, users = np.nonzero(matrix)
  return Ratings(items.astype(np.int32), users.astype(np.int32),
                 matrix[items, users].astype(_float_dtype(matrix)),
                 tuple(matrix.shape))


def _float_dtype(values: np.ndarray) -> np.dtype:
  """The dtype ratings keep: a float dtype as given, float32 otherwise."""
  return (values.dtype if np.issubdtype(values.dtype, np.floating)
          else np.dtype(np.float32))


def from_triplets(items: Array, users: Array, values: Array,
                  shape: tuple[int, int]) -> Ratings:
  """Validated, sorted :class:`Ratings` from unordered triplets, on the host.

  Args:
    items: ``(k,)`` integer row indices in ``[0, shape[0])``.
    users: ``(k,)`` integer column indices in ``[0, shape[1])``.
    values: ``(k,)`` ratings, all positive and finite.
    shape: ``(n_items, n_users)``.

  Raises:
    ValueError: indices out of range, non-positive or non-finite ratings,
      or a ``(item, user)`` pair given twice (the message names the first).

  Examples:
    >>> from glocal_jax.ratings import from_triplets
    >>> r = from_triplets([2, 0, 2], [1, 3, 0], [4.0, 5.0, 3.0], (3, 4))
    >>> r.items.tolist(), r.users.tolist(), r.values.tolist()
    ([0, 2, 2], [3, 0, 1], [5.0, 3.0, 4.0])
  """
  items = np.asarray(items, np.int64)
  users = np.asarray(users, np.int64)
  values = np.asarray(values)
  values = values.astype(_float_dtype(values))
  m, n = (int(s) for s in shape)
  if not (items.shape == users.shape == values.shape and items.ndim == 1):
    raise ValueError(f"items, users and values must be equal 1-D shapes, got "
                     f"{items.shape}, {users.shape}, {values.shape}.")
  if m <= 0 or n <= 0:
    raise ValueError(f"shape must be positive, got {shape}.")
  for name, idx, size in (("item", items, m), ("user", users, n)):
    bad = np.flatnonzero((idx < 0) | (idx >= size))
    if bad.size:
      raise ValueError(f"{name} index {idx[bad[0]]} (entry {bad[0]}) is out "
                       f"of range [0, {size}).")
  bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
  if bad.size:
    raise ValueError(f"ratings must be positive and finite (0 means "
                     f"'unrated'); entry {bad[0]} is {values[bad[0]]}.")
  keys = items * n + users
  order = np.argsort(keys, kind="stable")
  keys = keys[order]
  dup = np.flatnonzero(keys[1:] == keys[:-1])
  if dup.size:
    first, second = order[dup[0]], order[dup[0] + 1]
    raise ValueError(f"entries {first} and {second} both rate item "
                     f"{items[first]} by user {users[first]}.")
  return Ratings(items[order].astype(np.int32), users[order].astype(np.int32),
                 values[order], (m, n))


def check(ratings: Ratings) -> None:
  """Raises ``ValueError`` unless ``ratings`` is well formed (host): indices
  in range, entries sorted by item then user with no cell twice, values
  finite and >= 0 (0: padding). The blocked and sparse products rely on the
  order: unsorted triplets would give wrong losses silently
  (:func:`from_triplets` sorts them)."""
  host = ratings.to_host()
  m, n = ratings.shape
  items, users = host.items.astype(np.int64), host.users.astype(np.int64)
  for name, idx, size in (("item", items, m), ("user", users, n)):
    bad = np.flatnonzero((idx < 0) | (idx >= size))
    if bad.size:
      raise ValueError(f"{name} index {idx[bad[0]]} (entry {bad[0]}) is out "
                       f"of range [0, {size}).")
  bad = np.flatnonzero(~(np.isfinite(host.values) & (host.values >= 0)))
  if bad.size:
    raise ValueError(f"ratings must be finite and >= 0 (0: padding); entry "
                     f"{bad[0]} is {host.values[bad[0]]}.")
  real = host.values > 0
  keys = (items * n + users)[real]
  step = np.flatnonzero(np.diff(keys) <= 0)
  if step.size:
    at = np.flatnonzero(real)[step[0] + 1]
    what = "rates the same cell as" if keys[step[0] + 1] == keys[step[0]] \
        else "comes before"
    raise ValueError(
        f"entry {at} (item {items[at]}, user {users[at]}) {what} the entry "
        "before it: Ratings must be sorted by item, then user, each cell "
        "once; build them with glocal_jax.ratings.from_triplets.")


def take(ratings: Ratings, index: Array) -> Ratings:
  """The entries at ``index`` (host), re-sorted by item then user."""
  index = np.sort(np.asarray(index))
  host = ratings.to_host()
  return Ratings(host.items[index], host.users[index], host.values[index],
                 ratings.shape)


def transpose(ratings: Ratings) -> Ratings:
  """The same entries of the transposed ``(n, m)`` matrix (host), sorted
  by its rows (the users) then columns; padding entries are dropped."""
  host = ratings.to_host()
  real = host.values > 0
  items, users = host.items[real], host.users[real]
  order = np.argsort(users.astype(np.int64) * ratings.shape[0] + items,
                     kind="stable")
  return Ratings(users[order], items[order], host.values[real][order],
                 (ratings.shape[1], ratings.shape[0]))


def pad(ratings: Ratings, nnz: int) -> Ratings:
  """``ratings`` with padding entries appended up to ``nnz`` entries (host).

  Padding entries have value 0 at the last cell ``(m - 1, n - 1)``, which
  keeps the order; every function of the library ignores them. Padding
  lets data sets of different sizes share one compiled program, or be
  stacked for ``jax.vmap``.
  """
  host = ratings.to_host()
  extra = nnz - host.nnz
  if extra < 0:
    raise ValueError(f"cannot pad {host.nnz} entries down to {nnz}.")
  m, n = ratings.shape
  return Ratings(
      np.concatenate([host.items, np.full(extra, m - 1, np.int32)]),
      np.concatenate([host.users, np.full(extra, n - 1, np.int32)]),
      np.concatenate([host.values, np.zeros(extra, host.values.dtype)]),
      ratings.shape)
