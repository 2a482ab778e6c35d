"""Splitting ratings: the reference's seeded shuffle of rating rows (NumPy's
legacy RNG, as docs/model.md requires for ML-1M) and seeded shares of a
:class:`~glocal_jax.ratings.Ratings` (validation, training ratio)."""

from __future__ import annotations

import dataclasses

import numpy as np

from glocal_jax import ratings as rt
from glocal_jax.data.container import RatingData
from glocal_jax.data.reading import RawRatings
from glocal_jax.ratings import Ratings


def seeded_split(raw: RawRatings, test_fraction: float, seed: int
                  ) -> tuple[RawRatings, RawRatings]:
  """The reference's split: rows shuffled by NumPy's legacy RNG seeded with
  ``seed`` (``np.random.seed(seed); np.random.shuffle(...)``, without
  touching the global RNG); the first ``int(test_fraction * N)`` shuffled
  rows are test, the rest train (``test_fraction=0``: every row is train,
  the test set is empty)."""
  if not 0.0 <= test_fraction < 1.0:
    raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}.")
  order = np.arange(raw.values.size)
  np.random.RandomState(seed).shuffle(order)
  n_test = int(test_fraction * raw.values.size)
  return raw.take(order[n_test:]), raw.take(order[:n_test])


def split_ratings(ratings: Ratings, fraction: float, seed: int
                   ) -> tuple[Ratings, Ratings]:
  """A seeded ``fraction`` of the entries moved out: ``(kept, moved)``."""
  k = ratings.nnz
  chosen = np.random.default_rng(seed).permutation(k)[
      :int(round(fraction * k))]
  moved = np.zeros(k, bool)
  moved[chosen] = True
  return rt.take(ratings, np.flatnonzero(~moved)), rt.take(ratings, chosen)


def split_validation(data: RatingData, fraction: float = 0.05,
                     seed: int = 0) -> RatingData:
  """Holds out a seeded ``fraction`` of the training ratings as validation.

  The test set is untouched; the model never sees the validation ratings.
  The entries chosen are those of the item-major order (the order of
  ``np.nonzero`` on the dense matrix), so splits match earlier versions.
  """
  if not 0.0 < fraction < 1.0:
    raise ValueError(f"validation fraction must be in (0, 1), got {fraction}.")
  train, valid = split_ratings(data.train, fraction, seed)
  return dataclasses.replace(data, train=train, valid=valid)


def subsample_train(data: RatingData, ratio: float, seed: int = 0
                    ) -> RatingData:
  """Keeps a seeded share ``ratio`` of the training ratings (paper Fig. 2)."""
  if not 0.0 < ratio <= 1.0:
    raise ValueError(f"training ratio must be in (0, 1], got {ratio}.")
  if ratio == 1.0:
    return data
  _, kept = split_ratings(data.train, ratio, seed)
  return dataclasses.replace(data, train=kept)
