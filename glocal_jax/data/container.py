"""The data set container: :class:`RatingData`, its rating scale and the
data errors every loader raises."""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from glocal_jax.ratings import Ratings


class MissingDataError(FileNotFoundError):
  """A dataset file is not where the loader looked."""


class DataFormatError(ValueError):
  """A dataset file does not have the expected format."""


@dataclasses.dataclass(frozen=True)
class RatingScale:
  """The ratings a data set allows: ``low`` to ``high`` in steps of ``step``
  (``step = 0``: any value in between). Predictions are clipped to
  ``[low, high]`` before every metric."""
  low: float
  high: float
  step: float = 1.0

  def __post_init__(self):
    if not 0 < self.low <= self.high or self.step < 0:
      raise ValueError(f"a rating scale needs 0 < low <= high and step >= 0 "
                       f"(0 is 'not rated'), got {self}.")

  def off_scale(self, values: np.ndarray) -> np.ndarray:
    """Indices of ``values`` not on the scale."""
    bad = (values < self.low) | (values > self.high)
    if self.step:
      steps = (values - self.low) / self.step
      bad |= np.abs(steps - np.round(steps)) > 1e-6
    return np.flatnonzero(bad)

  def describe(self) -> str:
    step = f" in steps of {self.step:g}" if self.step else ""
    return f"{self.low:g}..{self.high:g}{step}"


STARS = RatingScale(1.0, 5.0, 1.0)
HALF_STARS = RatingScale(0.5, 5.0, 0.5)


@dataclasses.dataclass(frozen=True)
class RatingData:
  """Ratings split into train / test (and optionally validation).

  Attributes:
    name: dataset name.
    train: training :class:`~glocal_jax.ratings.Ratings`, items x users.
    test: test ratings of the same matrix.
    item_ids: ``(m,)`` raw item id of each row (int64, or bytes for string
      ids).
    user_ids: ``(n,)`` raw user id of each column.
    valid: validation ratings carved out of the training ones (see
      :func:`split_validation`), or None.
    notes: warnings about the data a user should see (e.g. counts that
      differ from the published release, cold test users dropped).
    scale: the rating scale (predictions are clipped to it).
  """
  name: str
  train: Ratings
  test: Ratings
  item_ids: np.ndarray
  user_ids: np.ndarray
  valid: Optional[Ratings] = None
  notes: tuple[str, ...] = ()
  scale: RatingScale = STARS

  @property
  def shape(self) -> tuple[int, int]:
    """``(n_items, n_users)``."""
    return self.train.shape

  def summary(self) -> str:
    parts = [f"{self.name}: {self.shape[0]} items x {self.shape[1]} users",
             f"{self.train.count()} train"]
    if self.valid is not None:
      parts.append(f"{self.valid.count()} validation")
    parts.append(f"{self.test.count()} test ratings on "
                 f"{self.scale.describe()}")
    return ", ".join(parts)
