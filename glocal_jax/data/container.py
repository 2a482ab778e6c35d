"""The data set container: :class:`RatingData`, its rating scale and the
data errors every loader raises."""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from glocal_jax import ratings as rt
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

  @property
  def bounds(self) -> tuple[float, float]:
    """``(low, high)``: the clip of every metric, e.g.
    ``glocal_jax.rmse(pred, data.test, *data.scale.bounds)``."""
    return (self.low, self.high)

  def off_scale(self, values: np.ndarray) -> np.ndarray:
    """Indices of ``values`` not on the scale."""
    bad = (values < self.low) | (values > self.high)
    if self.step:
      steps = (values - self.low) / self.step
      bad |= np.abs(steps - np.round(steps)) > 1e-6
    return np.flatnonzero(bad)

  def is_model_scale(self) -> bool:
    """Whether this is the model's own scale (:data:`MODEL_SCALE`)."""
    return (self.low, self.high) == MODEL_SCALE

  def to_model(self, values):
    """Ratings on this scale mapped linearly onto the model's 1..5
    (:data:`MODEL_SCALE`), so that the paper's hyper-parameters fit any
    data; 0 (not rated, padding) stays 0. The identity on 1..5, so those
    data sets train exactly as before. NumPy or JAX arrays."""
    if self.is_model_scale():
      return values
    low, high = MODEL_SCALE
    if self.high == self.low:
      return (values > 0) * ((low + high) / 2)
    mapped = (values - self.low) * ((high - low) / (self.high - self.low))
    return (mapped + low) * (values > 0)

  def from_model(self, predictions):
    """Predictions on the model's 1..5 mapped back onto this scale (the
    inverse of :meth:`to_model`; the identity on 1..5). Not clipped."""
    if self.is_model_scale():
      return predictions
    low, high = MODEL_SCALE
    return ((predictions - low) * ((self.high - self.low) / (high - low))
            + self.low)

  def to_model_ratings(self, ratings: Ratings) -> Ratings:
    """``ratings`` with their values mapped by :meth:`to_model`."""
    if self.is_model_scale():
      return ratings
    return dataclasses.replace(ratings, values=self.to_model(ratings.values))

  def describe(self) -> str:
    step = f" in steps of {self.step:g}" if self.step else ""
    return f"{self.low:g}..{self.high:g}{step}"


# The scale the model trains on, whatever the data's: the paper's 1..5.
MODEL_SCALE = (1.0, 5.0)
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
    item_titles: ``(m,)`` str, each item's name (``""`` where unknown), or
      None (:mod:`glocal_jax.data.titles`).
  """
  name: str
  train: Ratings
  test: Ratings
  item_ids: np.ndarray
  user_ids: np.ndarray
  valid: Optional[Ratings] = None
  notes: tuple[str, ...] = ()
  scale: RatingScale = STARS
  item_titles: Optional[np.ndarray] = None

  @property
  def shape(self) -> tuple[int, int]:
    """``(n_items, n_users)``."""
    return self.train.shape

  def transposed(self) -> "RatingData":
    """The data of the transposed matrix: users as rows, items as columns
    (a user-based autoencoder's view); every split transposed (and no
    titles: the rows are no longer items)."""
    flip = lambda r: None if r is None else rt.transpose(r)
    return dataclasses.replace(self, train=flip(self.train),
                               test=flip(self.test), valid=flip(self.valid),
                               item_ids=self.user_ids,
                               user_ids=self.item_ids, item_titles=None)

  def summary(self) -> str:
    parts = [f"{self.name}: {self.shape[0]} items x {self.shape[1]} users",
             f"{self.train.count()} train"]
    if self.valid is not None:
      parts.append(f"{self.valid.count()} validation")
    parts.append(f"{self.test.count()} test ratings on "
                 f"{self.scale.describe()}")
    return ", ".join(parts)
