"""Seeded synthetic ratings of any shape and popularity skew, in O(N) memory."""

from __future__ import annotations

from typing import Optional

import numpy as np

from glocal_jax.data.container import RatingData
from glocal_jax.ratings import Ratings


def _popularity(rng: np.random.Generator, size: int,
                skew: float) -> Optional[np.ndarray]:
  """Zipf-Mandelbrot probabilities ``(rank + 0.1 * size)^-skew`` over a
  random permutation of ``size`` ids (None for uniform)."""
  if skew == 0:
    return None
  p = (np.arange(1, size + 1) + 0.1 * size) ** -float(skew)
  return rng.permutation(p / p.sum())


def synthetic(n_items: int = 300, n_users: int = 200,
              density: Optional[float] = 0.05, rank: int = 5,
              test_fraction: float = 0.1, seed: int = 0, *,
              n_ratings: Optional[int] = None, item_skew: float = 0.0,
              user_skew: float = 0.0) -> RatingData:
  """Seeded low-rank ratings in 1..5 at chosen positions, in O(N) memory.

  Positions: ``N = n_ratings`` (or ``round(density * m * n)``) distinct
  (item, user) pairs, items and users drawn independently, uniformly or
  with Zipf-like popularity: ``P(id of rank k) ~ (k + 0.1 * size)^-skew``
  over a random order of the ids. ``skew = 1.5`` gives, on any shape, a
  most-rated item with about 7x the mean count and a median of 0.49x the
  mean (ML-100K's ``u1.base``: 10x and 0.45x for items, 8x and 0.59x for
  users). Values: ``clip(round(3 + 1.25 * z / sqrt(rank)), 1, 5)`` with
  ``z = a_i . b_u`` for standard normal ``a`` and ``b`` of dimension
  ``rank``. Each rating is test with probability ``test_fraction``.

  Args:
    n_items, n_users: the matrix shape.
    density: share of observed cells (ignored when ``n_ratings`` is set).
    rank: rank of the underlying preference matrix.
    test_fraction: share of ratings held out as test, in [0, 1).
    seed: seeds everything.
    n_ratings: number of ratings (alternative to ``density``).
    item_skew, user_skew: popularity exponents (0: uniform).

  Returns:
    :class:`RatingData` named ``"synthetic"``.
  """
  if not (n_items > 0 and n_users > 0 and rank > 0):
    raise ValueError("n_items, n_users and rank must be positive.")
  cells = n_items * n_users
  if n_ratings is None:
    if density is None or not 0.0 < density <= 1.0:
      raise ValueError(f"density must be in (0, 1], got {density}.")
    n_ratings = int(round(density * cells))
  if not 0 < n_ratings <= cells:
    raise ValueError(f"n_ratings must be in [1, {cells}] for a "
                     f"{n_items} x {n_users} matrix, got {n_ratings}.")
  if not 0.0 <= test_fraction < 1.0:
    raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}.")
  if item_skew < 0 or user_skew < 0:
    raise ValueError("item_skew and user_skew must be >= 0.")
  rng = np.random.default_rng(seed)
  p_item = _popularity(rng, n_items, item_skew)
  p_user = _popularity(rng, n_users, user_skew)
  keys = np.empty(0, np.int64)
  for _ in range(100):  # draw, deduplicate, draw what is missing
    missing = n_ratings - keys.size
    if missing == 0:
      break
    draw = missing + missing // 8 + 16
    items = rng.choice(n_items, draw, p=p_item)
    users = rng.choice(n_users, draw, p=p_user)
    fresh = np.unique(items.astype(np.int64) * n_users + users)
    fresh = np.setdiff1d(fresh, keys, assume_unique=True)
    keys = np.union1d(keys, rng.permutation(fresh)[:missing])
  else:
    raise ValueError(f"could not draw {n_ratings} distinct cells of a "
                     f"{n_items} x {n_users} matrix with these skews; ask "
                     "for fewer ratings or less skew.")
  items, users = np.divmod(keys, n_users)
  a = rng.standard_normal((n_items, rank), np.float32)
  b = rng.standard_normal((n_users, rank), np.float32)
  values = np.empty(keys.size, np.float32)
  for lo in range(0, keys.size, 1 << 22):  # bounded (chunk, rank) products
    z = np.einsum("kr,kr->k", a[items[lo:lo + (1 << 22)]],
                  b[users[lo:lo + (1 << 22)]])
    values[lo:lo + z.size] = np.clip(np.round(3 + 1.25 * z / np.sqrt(rank)),
                                     1, 5)
  is_test = rng.random(keys.size) < test_fraction
  shape = (n_items, n_users)
  split = [Ratings(items[sel].astype(np.int32), users[sel].astype(np.int32),
                   values[sel], shape) for sel in (~is_test, is_test)]
  return RatingData("synthetic", split[0], split[1],
                    np.arange(1, n_items + 1), np.arange(1, n_users + 1))
