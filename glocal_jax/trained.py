"""A trained model from its checkpoint: predictions and recommendations in
the data's own ids and rating scale.

:func:`load_model` reads what :func:`glocal_jax.experiment.fit` (and so
``experiments/train.py``) checkpoints: the parameters, the config, the
training ratings with their raw ids and scale, and the cells of the
validation and test ratings. Nothing else is needed::

    model = glocal_jax.load_model("OUTPUT_DIR/checkpoint")
    model.predict(["u_1", "u_2"], ["tt01", "tt07"])   # ratings on the scale
    model.recommend("u_1", k=10)                      # [(item id, rating)]

Predictions are what the run's metrics evaluated: the model's output mapped
from its 1..5 back onto the data's scale, the pairs of a user or item
without a training rating predicted by
:func:`glocal_jax.baselines.fallback_predictions` (when the run used it, the
default), clipped to the scale.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional, Sequence

import jax.numpy as jnp
import numpy as np

from glocal_jax import baselines
from glocal_jax import checkpoint
from glocal_jax import experiment
from glocal_jax import ratings as rt
from glocal_jax import training
from glocal_jax.config import GLocalKConfig
from glocal_jax.data.checks import show_id
from glocal_jax.data.container import STARS
from glocal_jax.data.container import RatingScale
from glocal_jax.ratings import Ratings
from glocal_jax.recommend import top_k_unrated


class UnknownIdError(KeyError):
  """An id that the model's data does not have."""

  def __str__(self) -> str:  # KeyError would quote the message
    return str(self.args[0])


def _lookup(ids: np.ndarray, wanted: Sequence[Any]) -> np.ndarray:
  """Index of each raw id of ``wanted`` in the sorted ``ids`` (-1: absent).
  Text ids (bytes) take str or bytes; numeric ids take numbers or their
  text."""
  wanted = list(wanted)
  if ids.dtype.kind == "S":
    keys = np.asarray([w if isinstance(w, bytes) else str(w).encode()
                       for w in wanted], dtype=f"S{max(ids.itemsize, 1)}")
    # Longer than every id: cannot be one (astype would cut it).
    too_long = np.asarray([len(w if isinstance(w, bytes) else str(w)
                               .encode()) > ids.itemsize for w in wanted],
                          bool)
  else:
    keys, too_long = [], []
    for w in wanted:
      try:
        keys.append(int(w.decode() if isinstance(w, bytes) else w))
        too_long.append(False)
      except (TypeError, ValueError):
        keys.append(0)
        too_long.append(True)
    keys, too_long = np.asarray(keys, np.int64), np.asarray(too_long, bool)
  at = np.minimum(np.searchsorted(ids, keys), max(ids.size - 1, 0))
  found = (ids.size > 0) & ~too_long & (ids[at] == keys)
  return np.where(found, at, -1)


@dataclasses.dataclass
class TrainedModel:
  """A trained GLocal-K model with the data it was trained on.

  Attributes:
    config: the run's :class:`~glocal_jax.GLocalKConfig`.
    params: the parameters after ``phase`` epoch ``epoch``.
    phase: ``"pretrain"`` (the local-kernel AE) or ``"finetune"``
      (GLocal-K).
    epoch: the epoch within the phase.
    train: the training ratings, items x users, on the data's scale.
    item_ids: ``(m,)`` raw id of each item (sorted; bytes for text ids).
    user_ids: ``(n,)`` raw id of each user.
    scale: the data's rating scale.
    splits: ``{"valid", "test"}`` ratings of the run, where the checkpoint
      has them (values since this version; only the cells before).
    cold_fallback: whether cold pairs get the mean predictors.
    item_titles: ``(m,)`` each item's name (``""`` where unknown), or
      None.
    meta: the checkpoint's JSON document (history, seed, data print).
    damaged: what was wrong with newer checkpoint files that could not be
      read (:attr:`glocal_jax.checkpoint.Checkpoint.damaged`).
  """
  config: GLocalKConfig
  params: Any
  phase: str
  epoch: int
  train: Ratings
  item_ids: np.ndarray
  user_ids: np.ndarray
  scale: RatingScale
  splits: dict[str, Ratings]
  cold_fallback: bool = True
  item_titles: Optional[np.ndarray] = None
  meta: dict = dataclasses.field(default_factory=dict)
  damaged: list[str] = dataclasses.field(default_factory=list)
  _prepared: Any = dataclasses.field(default=None, repr=False)

  @property
  def shape(self) -> tuple[int, int]:
    return self.train.shape

  @property
  def warnings(self) -> list[str]:
    """What :func:`glocal_jax.experiment.diagnose` finds in the run up to
    this checkpoint's epoch: a collapse (one prediction for all of a user's
    items), a fine-tuning that never beat pre-training, a model no better
    than a mean predictor (checkpoints that record the mean predictors).
    Empty for a healthy model; a user of its predictions should see each."""
    history = self.meta.get("history", [])
    return experiment.diagnose(experiment.summarise(history), history,
                               self.meta.get("mean_predictors", {}),
                               self.scale)

  def item_index(self, items: Sequence[Any]) -> np.ndarray:
    """Row of each raw item id (-1 where the data has no such item)."""
    return _lookup(self.item_ids, items)

  def user_index(self, users: Sequence[Any]) -> np.ndarray:
    """Column of each raw user id (-1 where the data has no such user)."""
    return _lookup(self.user_ids, users)

  def _model_data(self):
    """The training ratings as the model sees them (orientation, its 1..5),
    prepared once."""
    if self._prepared is None:
      train = self.train
      if self.config.orientation == "users":
        train = rt.transpose(train)
      self._prepared = training.prepare(
          self.config, self.scale.to_model_ratings(train))
    return self._prepared

  def predict_indices(self, items: np.ndarray, users: np.ndarray
                      ) -> np.ndarray:
    """``(k,)`` ratings at rows ``items`` and columns ``users`` (-1: an
    unknown item or user, predicted by the mean predictors as a cold one)."""
    items = np.asarray(items, np.int64)
    users = np.asarray(users, np.int64)
    rows, cols = np.maximum(items, 0), np.maximum(users, 0)
    at = (cols, rows) if self.config.orientation == "users" else (rows, cols)
    pred = self.scale.from_model(training.predict(
        self.config, self.params, self._model_data(), *at, self.phase))
    if self.cold_fallback:
      pred = baselines.fallback_predictions(pred, self.train, rows, cols)
    if (items < 0).any() or (users < 0).any():
      # The model has no row or column for an unknown id: the means, as for
      # a cold one, whatever the run did.
      mean = lambda by: baselines.mean_predictions(self.train, rows, cols, by)
      pred = jnp.where(items < 0, jnp.where(users < 0, mean("global"),
                                            mean("user")),
                       jnp.where(users < 0, mean("item"), pred))
    return np.asarray(jnp.clip(pred, *self.scale.bounds))

  def predict(self, users: Sequence[Any], items: Sequence[Any],
              unknown: str = "fallback") -> np.ndarray:
    """``(k,)`` predicted ratings of ``users[i]`` for ``items[i]``, raw ids.

    Args:
      users, items: raw ids, as in the rating file (str or numbers).
      unknown: ``"fallback"`` (an id the data does not have is predicted as
        a cold one, by the means) or ``"error"`` (raise
        :class:`UnknownIdError` naming the first).
    """
    users, items = list(users), list(items)
    if len(users) != len(items):
      raise ValueError(f"{len(users)} users and {len(items)} items: give one "
                       "of each per prediction.")
    rows, cols = self.item_index(items), self.user_index(users)
    if unknown == "error":
      for kind, index, raw in (("item", rows, items), ("user", cols, users)):
        if (index < 0).any():
          raise UnknownIdError(f"unknown {kind} id "
                               f"{show_id(raw[int(np.argmax(index < 0))])}.")
    elif unknown != "fallback":
      raise ValueError(f"unknown must be 'fallback' or 'error', got "
                       f"{unknown!r}.")
    return self.predict_indices(rows, cols)

  def rated(self, user: int) -> np.ndarray:
    """``(m,)`` bool: the items that column ``user`` rated in any split of
    the run (training, validation, test)."""
    rated = np.zeros(self.shape[0], bool)
    for ratings in (self.train, *self.splits.values()):
      host = ratings.to_host()
      rated[host.items[(host.users == user) & (host.values > 0)]] = True
    return rated

  def title(self, item: Any) -> Optional[str]:
    """The name of the item with raw id ``item``, or None (no titles, an
    unknown item, or one the titles file does not name)."""
    if self.item_titles is None:
      return None
    row = int(self.item_index([item])[0])
    return (str(self.item_titles[row]) or None) if row >= 0 else None

  def recommend(self, user: Any, k: int = 10) -> list[tuple[Any, float]]:
    """The ``k`` items with the highest predictions among those ``user``
    (a raw id) has not rated in any split, best first, as ``(item id,
    rating)``.

    Raises:
      UnknownIdError: the data has no such user (the message says which
        ids it has).
    """
    column = int(self.user_index([user])[0])
    if column < 0:
      ids = self.user_ids
      raise UnknownIdError(
          f"unknown user id {show_id(user)}; the data has {ids.size} users "
          f"with ids {show_id(ids[0])} .. {show_id(ids[-1])} (in sorted order).")
    rated = self.rated(column)
    k = min(int(k), int((~rated).sum()))
    m = self.shape[0]
    scores = self.predict_indices(np.arange(m), np.full(m, column))
    items, values = top_k_unrated(jnp.asarray(scores), rated, k,
                                  *self.scale.bounds)
    return [(self.item_ids[i].decode() if self.item_ids.dtype.kind == "S"
             else self.item_ids[i].item(), float(v))
            for i, v in zip(np.asarray(items), np.asarray(values))]


def load_model(checkpoint_dir: str,
               config: Optional[GLocalKConfig] = None,
               epoch: str = "selected") -> TrainedModel:
  """The model in ``checkpoint_dir`` (train.py's ``OUTPUT_DIR/checkpoint``,
  or ``OUTPUT_DIR`` itself).

  Args:
    checkpoint_dir: the folder.
    epoch: ``"selected"`` (the default): the epoch the honest protocol
      selected on validation, when the run had a validation split (its
      checkpoint is in ``checkpoint_dir/selected``), else the last;
      ``"last"``: the last epoch run.
    config: the run's config, needed only when it held functions (a local
      kernel or an aggregation of the user's: the checkpoint records their
      names, not their code); by default the checkpoint's.

  Raises:
    FileNotFoundError: there is no checkpoint (the message says where it
      looked).
    glocal_jax.checkpoint.CheckpointError: every checkpoint there is
      damaged.
    ValueError: the checkpoint does not hold the training ratings (written
      by :func:`glocal_jax.checkpoint.save` directly, not by a run).
  """
  if epoch not in ("selected", "last"):
    raise ValueError(f"epoch must be 'selected' or 'last', got {epoch!r}.")
  inner = os.path.join(checkpoint_dir, "checkpoint")
  if not checkpoint.exists(checkpoint_dir) and checkpoint.exists(inner):
    checkpoint_dir = inner
  selected = os.path.join(checkpoint_dir, experiment.SELECTED)
  if epoch == "selected" and checkpoint.exists(selected):
    checkpoint_dir = selected
  ckpt = checkpoint.load(checkpoint_dir)
  arrays = ckpt.arrays
  if "train_rows" not in arrays or "config" not in ckpt.meta:
    raise ValueError(f"{ckpt.path} holds no training ratings or config: it "
                     "was not written by a training run "
                     "(glocal_jax.experiment.fit, experiments/train.py).")
  shape = tuple(int(x) for x in arrays["shape"])
  train = Ratings(arrays["train_rows"], arrays["train_cols"],
                  arrays["train_values"], shape)
  splits = {}
  for split in ("valid", "test"):
    if f"{split}_rows" in arrays:
      values = arrays.get(f"{split}_values",
                          np.ones(arrays[f"{split}_rows"].size, np.float32))
      splits[split] = Ratings(arrays[f"{split}_rows"],
                              arrays[f"{split}_cols"], values, shape)
  scale = (RatingScale(*(float(x) for x in arrays["scale"]))
           if "scale" in arrays else STARS)
  return TrainedModel(
      config=config or GLocalKConfig(**ckpt.meta["config"]),
      params=ckpt.params,
      phase=ckpt.meta["phase"], epoch=ckpt.meta["epoch"], train=train,
      item_ids=arrays["item_ids"], user_ids=arrays["user_ids"], scale=scale,
      splits=splits, cold_fallback=ckpt.meta.get("cold_fallback", True),
      item_titles=arrays.get("item_titles"),
      meta=ckpt.meta, damaged=ckpt.damaged)
