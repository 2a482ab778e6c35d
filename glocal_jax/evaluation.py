"""What a model's predictions mean on a data set, and how they are measured.

The model trains on its own 1..5 scale, on the items x users matrix or (for
``orientation="users"``) on its transpose (:func:`training_data`). A
prediction for a data set is the model's output at a cell of the items x
users matrix, mapped back onto the data's rating scale, the cells of a user
or item without a training rating predicted by the mean predictors (the
cold fallback, :func:`glocal_jax.baselines.fallback_predictions`), and
clipped to the scale: :func:`rating_predictions` is that one definition,
which :func:`glocal_jax.fit`'s evaluation, :class:`glocal_jax.TrainedModel`
and the runs of :mod:`glocal_jax.runs` share.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glocal_jax import baselines
from glocal_jax import matrix
from glocal_jax import metrics
from glocal_jax import representations
from glocal_jax.config import GLocalKConfig
from glocal_jax.data.container import MODEL_SCALE
from glocal_jax.data.container import RatingData
from glocal_jax.data.container import RatingScale
from glocal_jax.ratings import Ratings
from glocal_jax.representations import TrainingData

METRICS: tuple[str, ...] = ("rmse", "mae", "ndcg")
HIGHER_IS_BETTER = {"rmse": False, "mae": False, "ndcg": True}


def training_data(config: GLocalKConfig, train: Ratings, scale: RatingScale,
                  **options) -> TrainingData:
  """``train`` (items x users, on ``scale``) as ``config``'s model trains on
  it: mapped onto the model's 1..5 (:meth:`RatingScale.to_model`) and
  prepared for its orientation and plan (:func:`glocal_jax.prepare`, which
  takes ``options``: ``copies``, ``mesh``, ``memory_bytes``)."""
  return matrix.prepare(config, scale.to_model_ratings(train), **options)


class Forward(NamedTuple):
  """The static choices of a prediction: the phase and the model's
  functions (part of the compiled program's key)."""
  finetuned: bool
  orientation: str
  aggregation: Any
  local_kernel: Any
  pooling: Any

  @classmethod
  def of(cls, config: GLocalKConfig, phase: str) -> "Forward":
    matrix.check_phase(phase)
    return cls(phase == "finetune", config.orientation, config.aggregation,
               config.local_kernel_fn, config.pooling_fn)


def rating_predictions(predictions: jax.Array, train: Ratings,
                       scale: RatingScale, items: jax.Array,
                       users: jax.Array, cold_fallback: bool = True
                       ) -> jax.Array:
  """``(k,)`` predictions on the model's scale at ``(items, users)`` as
  ratings of the data: mapped back onto ``scale``, the cells of cold users
  or items predicted by the mean predictors of ``train`` (with
  ``cold_fallback``), clipped to ``scale``. Traceable."""
  pred = scale.from_model(predictions)
  if cold_fallback:
    pred = baselines.fallback_predictions(pred, train, items, users)
  return jnp.clip(pred, scale.low, scale.high)


def _ratings_at(params, data: TrainingData, train: Ratings, items, users,
                dot_scale, forward: Forward, scale: RatingScale,
                cold_fallback: bool) -> jax.Array:
  rows, cols = matrix.model_cells(forward.orientation, items, users)
  pred = representations.predictions_at(
      params, data, rows, cols, forward.finetuned, dot_scale,
      forward.aggregation, forward.local_kernel, forward.pooling)
  return rating_predictions(pred, train, scale, items, users, cold_fallback)


@functools.partial(jax.jit, static_argnums=(6, 7, 8))
def _predict(params, data, train, items, users, dot_scale, forward, scale,
             cold_fallback):
  return _ratings_at(params, data, train, items, users, dot_scale, forward,
                     scale, cold_fallback)


def predict_ratings(config: GLocalKConfig, params, data: TrainingData,
                    train: Ratings, scale: RatingScale, phase: str, *,
                    users: Any, items: Any, cold_fallback: bool = True
                    ) -> jax.Array:
  """``(k,)`` ratings of ``users[i]`` for ``items[i]`` (indices of the items
  x users matrix) after ``phase``: :func:`rating_predictions` of the model's
  output. ``data``: :func:`training_data` of ``train``. One compiled call."""
  matrix.check_orientation(config, data)
  return _predict(params, data, train, jnp.asarray(items),
                  jnp.asarray(users), config.dot_scale,
                  Forward.of(config, phase), scale, cold_fallback)


def scaled_metrics(predictions: jax.Array, targets: Ratings,
                   scale: RatingScale) -> dict:
  """``{"rmse", "mae", "ndcg"}`` of ``(k,)`` predictions on ``scale``:
  RMSE and MAE of the predictions clipped to it, in its units; NDCG with
  the gains ``2^r - 1`` of the ratings mapped onto the model's 1..5
  (:meth:`RatingScale.to_model`; the ranking is unchanged), so that it
  means the same on 1..100 as on the paper's 1..5 (where it is
  :func:`glocal_jax.metrics.evaluate` exactly)."""
  clipped = jnp.clip(predictions, scale.low, scale.high)
  out = metrics.evaluate(predictions, targets, scale.low, scale.high)
  if not scale.is_model_scale():
    out["ndcg"] = metrics.ndcg(scale.to_model(clipped),
                               scale.to_model_ratings(targets), *MODEL_SCALE)
  return out


def _measured(pred: jax.Array, targets: Ratings, scale: RatingScale) -> dict:
  """:func:`scaled_metrics` and ``spread``
  (:func:`~glocal_jax.metrics.item_spread`: 0 for a collapsed model)."""
  return {**scaled_metrics(pred, targets, scale),
          "spread": metrics.item_spread(pred, targets)}


@functools.partial(jax.jit, static_argnums=(5, 6, 7, 8, 9))
def _split_metrics(params, data: TrainingData, train: Ratings, splits: dict,
                   dot_scale, forward: Forward, scale: RatingScale,
                   cold_fallback: bool, stacked: bool,
                   train_spread: bool) -> dict:
  """Every metric of every split in one compiled call; with ``stacked``
  parameters, ``{"models": per model, "ensemble": of the mean
  prediction}``; with ``train_spread``, the item spread at the training
  ratings too."""
  # One dot_scale per stacked model (a configuration axis), or one for all.
  scale_axis = 0 if stacked and jnp.ndim(dot_scale) == 1 else None
  models, ensemble = {}, {}
  if train_spread:
    spread = lambda p, s: metrics.item_spread(_ratings_at(
        p, data, train, train.items, train.users, s, forward, scale,
        cold_fallback), train)
    models["train_spread"] = (jax.vmap(spread, in_axes=(0, scale_axis))(
        params, dot_scale) if stacked else spread(params, dot_scale))
  for split, targets in splits.items():
    predict = lambda p, s, t=targets: _ratings_at(
        p, data, train, t.items, t.users, s, forward, scale, cold_fallback)
    if not stacked:
      models.update({f"{split}_{k}": v for k, v in _measured(
          predict(params, dot_scale), targets, scale).items()})
      continue
    pred = jax.vmap(predict, in_axes=(0, scale_axis))(params, dot_scale)
    models.update({f"{split}_{k}": v for k, v in jax.vmap(
        _measured, in_axes=(0, None, None))(pred, targets, scale).items()})
    ensemble.update({f"{split}_{k}": v for k, v in _measured(
        jnp.mean(pred, axis=0), targets, scale).items()})
  return {"models": models, "ensemble": ensemble} if stacked else models


def split_metrics(config: GLocalKConfig, params, data: TrainingData,
                  ratings: RatingData, phase: str, cold_fallback: bool = True,
                  dot_scale: Any = None) -> dict:
  """The test (and validation, if any) metrics of ``params`` after
  ``phase``: ``{"test_rmse", "test_mae", "test_ndcg", "test_spread",
  "valid_...": ...}`` as floats. When neither split has a rating (a run
  on every rating), ``train_spread`` too: the item spread
  (:func:`~glocal_jax.metrics.item_spread`) of the predictions at the
  training ratings, which tells a collapsed model then (a pass over every
  training rating, made only when nothing else can tell).

  Parameters stacked over models (seeds, configurations) give
  ``{"models": {name: [one per model]}, "ensemble": {name: value}}``, the
  ensemble being the mean of the models' (clipped) predictions. One
  compiled call, one transfer.

  Args:
    config: the model.
    params: its parameters (or a stack of them).
    data: :func:`training_data` of ``ratings.train``.
    ratings: the data set: its training ratings (for the cold fallback),
      scale, and the evaluated splits.
    phase: ``"pretrain"`` or ``"finetune"``.
    cold_fallback: see :func:`rating_predictions`.
    dot_scale: instead of ``config``'s, e.g. one per stacked configuration.
  """
  splits = {"test": ratings.test}
  if ratings.valid is not None:
    splits["valid"] = ratings.valid
  stacked = matrix.is_stacked(params)
  unsplit = all(s.count() == 0 for s in splits.values())
  out = jax.device_get(_split_metrics(
      params, data, ratings.train, jax.device_put(splits),
      config.dot_scale if dot_scale is None else dot_scale,
      Forward.of(config, phase), ratings.scale, cold_fallback, stacked,
      unsplit))
  host = lambda d: {k: (np.asarray(v).tolist() if np.ndim(v) else float(v))
                    for k, v in d.items()}
  return ({"models": host(out["models"]), "ensemble": host(out["ensemble"])}
          if stacked else host(out))


def evaluated_counts(data: RatingData) -> dict:
  """How many ratings each split evaluates, and how many of the test
  ratings are of users or items without a training rating."""
  cold_user, cold_item = (np.asarray(c) for c in baselines.cold_entries(
      data.train, data.test.items, data.test.users))
  real = np.asarray(data.test.values) > 0
  counts = {"test_ratings": data.test.count(),
            "test_cold_users": int((real & cold_user).sum()),
            "test_cold_items": int((real & cold_item & ~cold_user).sum())}
  if data.valid is not None:
    counts["valid_ratings"] = data.valid.count()
  return counts


def mean_predictor_rmse(data: RatingData) -> dict:
  """``{split: {predictor: RMSE}}`` of the mean predictors
  (:mod:`glocal_jax.baselines`) on the test and validation splits that
  have ratings."""
  out = {}
  for split, targets in (("test", data.test), ("valid", data.valid)):
    if targets is None or targets.count() == 0:
      continue
    out[split] = {by: float(metrics.rmse(
        baselines.mean_predictions(data.train, targets.items, targets.users,
                                   by), targets, data.scale.low,
        data.scale.high)) for by in baselines.MEAN_PREDICTORS}
  return out


def model_view(history: list, index: Optional[int]) -> list:
  """Of the history of models trained stacked (records whose ``metrics``
  are :func:`split_metrics` of stacked parameters): model ``index``'s own
  records (each list of the record cut to its entry), or the ensemble's
  (``index`` None)."""
  view = []
  for record in history:
    if index is None:
      view.append(dataclasses.replace(
          record, metrics=dict(record.metrics["ensemble"])))
      continue
    pick = lambda v: v[index] if isinstance(v, list) else v
    view.append(dataclasses.replace(
        record, metrics={k: v[index] for k, v in
                         record.metrics["models"].items()},
        **{f: pick(getattr(record, f)) for f in
           ("loss", "evaluations", "iterations", "step_scale")}))
  return view
