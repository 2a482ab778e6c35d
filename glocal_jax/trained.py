"""A trained model with its data: predictions, recommendations and metrics
in the data's own ids and rating scale; saved and loaded.

:func:`glocal_jax.fit` returns a :class:`TrainedModel`; :meth:`TrainedModel.
save` writes it and :func:`load_model` reads it back (also from the
checkpoints of ``experiments/train.py``, which have the same contents)::

    model = glocal_jax.fit(config, data, jax.random.PRNGKey(0))
    model.predict(users=["u_1", "u_2"], items=["tt01", "tt07"])
    model.recommend("u_1", k=10)                      # [(item id, rating)]
    model.save("/tmp/model")
    glocal_jax.load_model("/tmp/model")               # the same predictions

Predictions are what the run's metrics evaluated
(:func:`glocal_jax.evaluation.rating_predictions`): the model's output
mapped from its 1..5 back onto the data's scale, the cells of a user or
item without a training rating predicted by
:func:`glocal_jax.baselines.fallback_predictions` (when the model was
trained with it, the default), clipped to the scale.
"""

from __future__ import annotations

import dataclasses
import importlib
import numbers
import os
from typing import Any, Optional, Sequence

import jax.numpy as jnp
import numpy as np

from glocal_jax import baselines
from glocal_jax import checkpoint
from glocal_jax import diagnosis
from glocal_jax import evaluation
from glocal_jax.config import GLocalKConfig
from glocal_jax.data.checks import show_id
from glocal_jax.data.container import STARS
from glocal_jax.data.container import RatingData
from glocal_jax.data.container import RatingScale
from glocal_jax.kernels import AGGREGATIONS
from glocal_jax.kernels import POOLINGS
from glocal_jax.ratings import Ratings
from glocal_jax.recommend import top_k_unrated
from glocal_jax.training import EpochRecord

# Beside a run's checkpoint: the checkpoint of its epoch of least validation
# RMSE (the honest protocol's selection), when it has a validation split.
SELECTED = "selected"


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


def _id_list(ids: Any, name: str) -> tuple[list, bool]:
  """``(ids as a list, whether one id was given)``."""
  if isinstance(ids, (str, bytes, numbers.Number, np.generic)) or (
      isinstance(ids, np.ndarray) and ids.ndim == 0):
    return [ids.item() if isinstance(ids, (np.generic, np.ndarray))
            else ids], True
  try:
    return list(ids), False
  except TypeError:
    raise TypeError(f"{name} must be an id or a sequence of ids, got "
                    f"{type(ids).__name__}.") from None


def model_arrays(data: RatingData) -> dict[str, np.ndarray]:
  """What a saved model holds of its data: the training ratings, raw ids and
  rating scale, so that it can predict and recommend on its own, the item
  titles, and the validation and test ratings (``{split}_rows``,
  ``{split}_cols``, ``{split}_values``: what each user has rated besides
  training, and what the run evaluated)."""
  splits = {"valid": data.valid, "test": data.test}
  return _arrays(data.train, data.item_ids, data.user_ids, data.scale,
                 {k: v for k, v in splits.items() if v is not None},
                 data.item_titles)


def _arrays(train: Ratings, item_ids: np.ndarray, user_ids: np.ndarray,
            scale: RatingScale, splits: dict[str, Ratings],
            item_titles: Optional[np.ndarray]) -> dict[str, np.ndarray]:
  host = train.to_host()
  arrays = {"item_ids": item_ids, "user_ids": user_ids,
            "train_rows": host.items, "train_cols": host.users,
            "train_values": host.values, "shape": np.asarray(train.shape),
            "scale": np.asarray([scale.low, scale.high, scale.step])}
  if item_titles is not None:
    arrays["item_titles"] = np.asarray(item_titles, str)
  for split, ratings in splits.items():
    host = ratings.to_host()
    arrays.update({f"{split}_rows": host.items, f"{split}_cols": host.users,
                   f"{split}_values": host.values})
  return arrays


def model_meta(config: GLocalKConfig, phase: str, epoch: int,
               history: Sequence[EpochRecord], mean_predictors: dict,
               cold_fallback: bool, plan: Optional[dict] = None,
               name: str = "") -> dict:
  """The JSON part of a saved model: what :func:`load_model` and
  :attr:`TrainedModel.warnings` read."""
  return {"config": config.to_dict(), "phase": phase, "epoch": epoch,
          "history": [h.to_dict() for h in history],
          "mean_predictors": mean_predictors, "cold_fallback": cold_fallback,
          "plan": plan, "name": name}


@dataclasses.dataclass
class TrainedModel:
  """A trained GLocal-K model with the data it was trained on.

  Attributes:
    config: the model's :class:`~glocal_jax.GLocalKConfig`.
    params: the parameters after ``phase`` epoch ``epoch``.
    phase: ``"pretrain"`` (the local-kernel AE) or ``"finetune"``
      (GLocal-K).
    epoch: the epoch within the phase.
    train: the training ratings, items x users, on the data's scale.
    item_ids: ``(m,)`` raw id of each item (sorted; bytes for text ids).
    user_ids: ``(n,)`` raw id of each user.
    scale: the data's rating scale.
    splits: ``{"valid", "test"}`` ratings of the data, where it had them.
    history: the :class:`~glocal_jax.training.EpochRecord` of every epoch
      of the run (up to this model's epoch for a run's checkpoint), with
      their validation and test metrics.
    mean_predictors: ``{split: {predictor: RMSE}}`` of the mean predictors
      on the data (:func:`glocal_jax.evaluation.mean_predictor_rmse`).
    cold_fallback: whether cold cells get the mean predictors.
    item_titles: ``(m,)`` each item's name (``""`` where unknown), or
      None.
    plan: the :class:`~glocal_jax.plan.Plan` the model computed with, as a
      dict (a loaded model computes with the same).
    name: the data set's name.
    meta: the saved file's JSON document (a run's checkpoint also records
      its seed, data fingerprint and time).
    damaged: what was wrong with newer files that could not be read
      (:attr:`glocal_jax.checkpoint.Checkpoint.damaged`).
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
  history: list[EpochRecord] = dataclasses.field(default_factory=list)
  mean_predictors: dict = dataclasses.field(default_factory=dict)
  cold_fallback: bool = True
  item_titles: Optional[np.ndarray] = None
  plan: Optional[dict] = None
  name: str = ""
  meta: dict = dataclasses.field(default_factory=dict)
  damaged: list[str] = dataclasses.field(default_factory=list)
  _prepared: Any = dataclasses.field(default=None, repr=False)

  @property
  def shape(self) -> tuple[int, int]:
    """``(n_items, n_users)``."""
    return self.train.shape

  @property
  def warnings(self) -> list[str]:
    """What :func:`glocal_jax.diagnosis.diagnose` finds in the model's run:
    a collapse (one prediction for all of a user's items), a fine-tuning
    that never beat pre-training, a model no better than a mean predictor.
    Empty for a healthy model, or one whose run evaluated nothing; a user
    of its predictions should see each."""
    return diagnosis.diagnose(diagnosis.summarise(self.history),
                              self.history, self.mean_predictors, self.scale)

  def item_index(self, items: Sequence[Any]) -> np.ndarray:
    """Row of each raw item id (-1 where the data has no such item)."""
    return _lookup(self.item_ids, items)

  def user_index(self, users: Sequence[Any]) -> np.ndarray:
    """Column of each raw user id (-1 where the data has no such user)."""
    return _lookup(self.user_ids, users)

  def training_data(self):
    """The training ratings as the model computes on them
    (:func:`glocal_jax.evaluation.training_data`, with the model's plan),
    prepared once."""
    if self._prepared is None:
      config = self.config
      if self.plan is not None:
        config = config.replace(representation=self.plan["name"],
                                block_size=self.plan["block_size"],
                                chunk_size=self.plan["chunk_size"])
      self._prepared = evaluation.training_data(config, self.train,
                                                self.scale)
    return self._prepared

  def predict_indices(self, items: np.ndarray, users: np.ndarray
                      ) -> np.ndarray:
    """``(k,)`` ratings at rows ``items`` and columns ``users`` (-1: an
    unknown item or user, predicted by the mean predictors as a cold one)."""
    items = np.asarray(items, np.int64)
    users = np.asarray(users, np.int64)
    rows, cols = np.maximum(items, 0), np.maximum(users, 0)
    pred = evaluation.predict_ratings(
        self.config, self.params, self.training_data(), self.train,
        self.scale, self.phase, users=cols, items=rows,
        cold_fallback=self.cold_fallback)
    if (items < 0).any() or (users < 0).any():
      # The model has no row or column for an unknown id: the means, as for
      # a cold one, whatever the run did.
      mean = lambda by: baselines.mean_predictions(self.train, rows, cols, by)
      pred = jnp.where(items < 0, jnp.where(users < 0, mean("global"),
                                            mean("user")),
                       jnp.where(users < 0, mean("item"), pred))
    return np.asarray(jnp.clip(pred, *self.scale.bounds))

  def predict(self, users: Any, items: Any, *, unknown: str = "error"
              ) -> np.ndarray | float:
    """Predicted ratings of ``users[i]`` for ``items[i]``, in raw ids.

    Args:
      users: a raw id as in the rating file (str or number), or a sequence
        of them; one id is paired with every item.
      items: likewise; one item is paired with every user.
      unknown: ``"error"`` (the default: raise :class:`UnknownIdError`
        naming the first id the data does not have, e.g. a mistyped one)
        or ``"fallback"`` (predict it as a user or item without a training
        rating, by the means).

    Returns:
      ``(k,)`` ratings on the data's scale; a float for one user and one
      item.

    Examples:
      ``model.predict(users="u_1", items=["tt01", "tt07"])``, or
      ``model.predict(["u_1", "u_2"], ["tt01", "tt01"])``.
    """
    users, one_user = _id_list(users, "users")
    items, one_item = _id_list(items, "items")
    if one_user and not one_item:
      users = users * len(items)
    elif one_item and not one_user:
      items = items * len(users)
    if len(users) != len(items):
      raise ValueError(f"{len(users)} users and {len(items)} items: give one "
                       "of each per prediction (or one user, or one item).")
    rows, cols = self.item_index(items), self.user_index(users)
    if unknown == "error":
      for kind, index, raw in (("user", cols, users), ("item", rows, items)):
        if (index < 0).any():
          raise UnknownIdError(self._unknown(
              kind, raw[int(np.argmax(index < 0))]) + (
                  " predict(..., unknown='fallback') predicts an unknown id "
                  "by the means."))
    elif unknown != "fallback":
      raise ValueError(f"unknown must be 'error' or 'fallback', got "
                       f"{unknown!r}.")
    pred = self.predict_indices(rows, cols)
    return float(pred[0]) if one_user and one_item else pred

  def _unknown(self, kind: str, raw: Any) -> str:
    ids = self.user_ids if kind == "user" else self.item_ids
    return (f"unknown {kind} id {show_id(raw)!r}; the data has {ids.size} "
            f"{kind}s with ids {show_id(ids[0])} .. {show_id(ids[-1])} (in "
            "sorted order).")

  def evaluate(self, ratings: Ratings) -> dict[str, float]:
    """``{"rmse", "mae", "ndcg"}`` of the model's predictions at
    ``ratings`` (cells of this model's items x users matrix, on the data's
    scale, e.g. ``data.test``), as the run's metrics measure them
    (:func:`glocal_jax.evaluation.scaled_metrics`)."""
    if tuple(ratings.shape) != tuple(self.shape):
      raise ValueError(f"the ratings are of a {ratings.shape[0]} x "
                       f"{ratings.shape[1]} matrix; the model's is "
                       f"{self.shape[0]} x {self.shape[1]} (items x users).")
    host = ratings.to_host()
    pred = self.predict_indices(host.items, host.users)
    return {k: float(v) for k, v in evaluation.scaled_metrics(
        jnp.asarray(pred), host, self.scale).items()}

  def rated(self, user: int) -> np.ndarray:
    """``(m,)`` bool: the items that column ``user`` rated in any split of
    the data (training, validation, test)."""
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
    (a raw id) has not rated in any split (training, validation, test),
    best first, as ``(item id, rating)``; fewer when fewer are unrated.

    Raises:
      UnknownIdError: the data has no such user (the message says which
        ids it has).
      ValueError: ``k`` is not a positive integer.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
      raise ValueError(f"k must be a positive integer, got {k!r}.")
    column = int(self.user_index([user])[0])
    if column < 0:
      raise UnknownIdError(self._unknown("user", user))
    rated = self.rated(column)
    k = min(int(k), int((~rated).sum()))
    m = self.shape[0]
    scores = self.predict_indices(np.arange(m), np.full(m, column))
    items, values = top_k_unrated(jnp.asarray(scores), rated, k,
                                  *self.scale.bounds)
    return [(self.item_ids[i].decode() if self.item_ids.dtype.kind == "S"
             else self.item_ids[i].item(), float(v))
            for i, v in zip(np.asarray(items), np.asarray(values))]

  def save(self, directory: str) -> str:
    """Writes the model into ``directory`` (a checkpoint:
    :func:`glocal_jax.checkpoint.save`, one generation kept back), from
    which :func:`load_model` gives a model with identical predictions.
    Returns the file's path.

    A config holding functions (a local kernel, aggregation or pooling of
    the user's) is saved by their names: :func:`load_model` imports a
    module-level function by its name, and takes ``config=`` for others.
    """
    meta = {**self.meta, **model_meta(
        self.config, self.phase, self.epoch, self.history,
        self.mean_predictors, self.cold_fallback, self.plan, self.name)}
    return checkpoint.save(directory, self.params, None, meta,
                           arrays=_arrays(self.train, self.item_ids,
                                          self.user_ids, self.scale,
                                          self.splits, self.item_titles))


def _function(value: Any, named: dict, field: str) -> Any:
  """A config field recorded as ``module.qualname`` back as its function,
  when importable; ``value`` itself when it is a name of ``named`` or not a
  function's name."""
  if not isinstance(value, str) or value in named or "." not in value:
    return value
  module, _, name = value.rpartition(".")
  try:
    found = importlib.import_module(module)
    for part in name.split("."):
      found = getattr(found, part)
  except (ImportError, AttributeError):
    found = None
  if not callable(found):
    raise ValueError(
        f"the model was trained with {field}={value}, a function that "
        "cannot be imported by that name (a lambda or a local function): "
        f"pass it back, load_model(path, config=config) with the config "
        "the model was trained with.")
  return found


def _saved_config(recorded: dict) -> GLocalKConfig:
  """The :class:`GLocalKConfig` of a saved model's recorded fields."""
  fields = dict(recorded)
  fields["aggregation"] = _function(fields.get("aggregation", "weighted"),
                                    AGGREGATIONS, "aggregation")
  fields["pooling"] = _function(fields.get("pooling", "mean"), POOLINGS,
                                "pooling")
  if isinstance(fields.get("local_kernel"), str):
    fields["local_kernel"] = _function(fields["local_kernel"], {},
                                       "local_kernel")
  return GLocalKConfig(**fields)


def load_model(checkpoint_dir: str,
               config: Optional[GLocalKConfig] = None,
               epoch: str = "selected") -> TrainedModel:
  """The model in ``checkpoint_dir``: a :meth:`TrainedModel.save` folder,
  train.py's ``OUTPUT_DIR/checkpoint``, or ``OUTPUT_DIR`` itself.

  Args:
    checkpoint_dir: the folder.
    config: the model's config, needed only when it held functions that
      cannot be imported by their recorded names (a lambda); by default the
      saved one.
    epoch: for a run's checkpoint: ``"selected"`` (the default): the epoch
      the honest protocol selected on validation, when the run had a
      validation split (its checkpoint is in ``checkpoint_dir/selected``),
      else the last; ``"last"``: the last epoch run.

  Raises:
    FileNotFoundError: there is no checkpoint (the message says where it
      looked).
    glocal_jax.checkpoint.CheckpointError: every checkpoint there is
      damaged.
    ValueError: the checkpoint does not hold the training ratings (written
      by :func:`glocal_jax.checkpoint.save` directly, not by a model or a
      run), or a function of the config cannot be imported.
  """
  if epoch not in ("selected", "last"):
    raise ValueError(f"epoch must be 'selected' or 'last', got {epoch!r}.")
  inner = os.path.join(checkpoint_dir, "checkpoint")
  if not checkpoint.exists(checkpoint_dir) and checkpoint.exists(inner):
    checkpoint_dir = inner
  selected = os.path.join(checkpoint_dir, SELECTED)
  if epoch == "selected" and checkpoint.exists(selected):
    checkpoint_dir = selected
  ckpt = checkpoint.load(checkpoint_dir)
  arrays, meta = ckpt.arrays, ckpt.meta
  if "train_rows" not in arrays or "config" not in meta:
    raise ValueError(f"{ckpt.path} holds no training ratings or config: it "
                     "was not written by a model (TrainedModel.save) or a "
                     "training run (experiments/train.py).")
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
      config=config or _saved_config(meta["config"]), params=ckpt.params,
      phase=meta["phase"], epoch=meta["epoch"], train=train,
      item_ids=arrays["item_ids"], user_ids=arrays["user_ids"], scale=scale,
      splits=splits,
      history=[EpochRecord.from_dict(h) for h in meta.get("history", [])],
      mean_predictors=meta.get("mean_predictors", {}),
      cold_fallback=meta.get("cold_fallback", True),
      item_titles=arrays.get("item_titles"), plan=meta.get("plan"),
      name=meta.get("name") or (meta.get("data") or {}).get("name", ""),
      meta=meta, damaged=ckpt.damaged)
