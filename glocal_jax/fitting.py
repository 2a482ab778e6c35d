"""From a data set to a trained model: :func:`fit`.

Every path that trains GLocal-K on a :class:`~glocal_jax.data.RatingData`
goes through here (research code, ``experiments/train.py``, the tables'
seeds, ``tune.py``): the orientation and the rating scale
(:func:`glocal_jax.evaluation.training_data`), the evaluation of every
epoch with the cold fallback and the clip
(:func:`glocal_jax.evaluation.split_metrics`), the selection of an epoch on
validation across both phases, and the diagnosis
(:attr:`glocal_jax.TrainedModel.warnings`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Optional

import jax

from glocal_jax import diagnosis
from glocal_jax import evaluation
from glocal_jax import training
from glocal_jax.config import GLocalKConfig
from glocal_jax.data.container import RatingData
from glocal_jax.data.splits import split_validation
from glocal_jax.optim import EpochStart
from glocal_jax.representations import TrainingData
from glocal_jax.trained import TrainedModel
from glocal_jax.training import Callback
from glocal_jax.training import EpochRecord

SELECTIONS: tuple[str, ...] = ("valid", "last")


@dataclasses.dataclass
class Resume:
  """Where a :func:`fit` continues a run (e.g. from a checkpoint).

  Attributes:
    params: the parameters after ``start``.
    start: ``(phase, epochs done)``.
    history: the records of the epochs run before (with their metrics).
    epoch_start: the next epoch's :class:`~glocal_jax.optim.EpochStart`,
      when known (an exact continuation); else its first step takes
      ``step_scale``.
    step_scale: the last epoch's curvature scale.
    selected: the parameters of the epoch of least validation RMSE among
      ``history``'s, when the run has a validation split.
  """
  params: Any
  start: tuple[str, int]
  history: list[EpochRecord]
  epoch_start: Optional[EpochStart] = None
  step_scale: Any = None
  selected: Any = None


def train_evaluated(config: GLocalKConfig, data: RatingData,
                    prepared: TrainingData, *, key: Optional[jax.Array] = None,
                    params: Any = None, on_epoch: Optional[Callback] = None,
                    cold_fallback: bool = True, dot_scale: Any = None,
                    **train_options) -> training.TrainResult:
  """:func:`glocal_jax.train` of ``config`` on ``prepared`` (the
  :func:`~glocal_jax.evaluation.training_data` of ``data.train``), each
  epoch's record given its :func:`~glocal_jax.evaluation.split_metrics`
  and their time before ``on_epoch(record, params)`` sees it (True from it
  stops). For one model or models stacked along a leading axis (a stack of
  keys or ``params``; ``dot_scale``: one per stacked configuration, with
  ``train_options`` ``hyper``); ``train_options`` go to
  :func:`glocal_jax.train`."""

  def callback(record: EpochRecord, params) -> Optional[bool]:
    tic = time.perf_counter()
    record.metrics = evaluation.split_metrics(
        config, params, prepared, data, record.phase, cold_fallback,
        dot_scale)
    record.evaluation_seconds = time.perf_counter() - tic
    return None if on_epoch is None else on_epoch(record, params)

  return training.train(config, prepared, key, params=params,
                        callback=callback, **train_options)


def fit(config: GLocalKConfig, data: RatingData,
        key: Optional[jax.Array] = None, *,
        callback: Optional[Callback] = None, select: str = "valid",
        validation_fraction: float = 0.05, validation_seed: int = 0,
        cold_fallback: bool = True, prepared: Optional[TrainingData] = None,
        mesh: Optional[jax.sharding.Mesh] = None,
        epoch_fns: Optional[dict] = None, max_epochs: Optional[int] = None,
        resume: Optional[Resume] = None) -> TrainedModel:
  """Trains ``config``'s model on ``data`` and returns it, evaluated.

  The model trains on ``data.train`` mapped onto its own 1..5 and oriented
  as ``config.orientation`` says (the user-based model on the transposed
  matrix). After every epoch the validation and test splits are evaluated
  on the data's scale: cold users and items predicted by the mean
  predictors (with ``cold_fallback``), predictions clipped to the scale.

  Args:
    config: the model and its schedule; every piece of the model (local
      kernel, pooling, aggregation) is replaced through it.
    data: the data set (:mod:`glocal_jax.data`'s loaders). Its validation
      split selects the epoch; without one, ``validation_fraction`` of the
      training ratings is held out for it.
    key: PRNG key of the initialisation (unused with ``resume``).
    callback: ``callback(record, params) -> bool | None`` after every
      epoch, the record's ``metrics`` filled (``valid_rmse``, ``test_rmse``
      ...); returning True stops training after that epoch (early
      stopping).
    select: ``"valid"`` (the default): the model of the epoch of least
      validation RMSE among the epochs of both phases (a pre-training epoch
      can win), when there is a validation split, else the last;
      ``"last"``: the last epoch's.
    validation_fraction: the share of the training ratings held out as a
      validation split (:func:`glocal_jax.data.split_validation`, seeded by
      ``validation_seed``) when ``data`` has none: the honest protocol by
      default; 0 trains on every training rating and keeps the last epoch
      (the test set is only ever reported, never selected on).
    cold_fallback: predict the cells of users or items without a training
      rating by the mean predictors (False: by the model, as the authors'
      code).
    prepared: :func:`glocal_jax.evaluation.training_data` of
      ``data.train`` for this config, to prepare once for several fits.
    mesh: split the items over this mesh's devices
      (:func:`glocal_jax.sharding.device_mesh`).
    epoch_fns: compiled epochs to reuse
      (:func:`glocal_jax.epochs.make_epoch_fns`).
    max_epochs: stop after this many epochs (a later ``resume`` goes on).
    resume: continue a run (:class:`Resume`).

  Returns:
    :class:`~glocal_jax.TrainedModel` with the selected epoch's parameters,
    the whole history, the mean predictors' RMSE and its diagnosis
    (``warnings``).

  Raises:
    ValueError: ``data`` has no training rating, or ``select`` is unknown.
    glocal_jax.NonFiniteError: the loss or a parameter became non-finite.

  Examples:
    >>> import jax
    >>> import glocal_jax as gj
    >>> from glocal_jax import data
    >>> d = data.split_validation(data.synthetic(30, 20, density=0.3), 0.1)
    >>> config = gj.GLocalKConfig(hidden=(8,), n_dim=2, pretrain_epochs=2,
    ...                           finetune_epochs=2, pretrain_maxiter=3,
    ...                           finetune_maxiter=3)
    >>> model = gj.fit(config, d, jax.random.PRNGKey(0))
    >>> len(model.history), model.phase in ("pretrain", "finetune")
    (4, True)
    >>> stop = lambda record, params: record.epoch == 1
    >>> len(gj.fit(config, d, jax.random.PRNGKey(0), callback=stop).history)
    1
  """
  if select not in SELECTIONS:
    raise ValueError(f"select must be one of {SELECTIONS}, got {select!r}.")
  if data.train.count() == 0:
    raise ValueError(f"{data.name} has no training ratings: nothing to "
                     "train on.")
  if data.valid is None and validation_fraction > 0:
    if prepared is not None:
      raise ValueError("prepared training data and a validation split "
                       "carved here disagree: split the data first "
                       "(glocal_jax.data.split_validation) or pass "
                       "validation_fraction=0.")
    data = split_validation(data, validation_fraction, validation_seed)
  if prepared is None:
    prepared = evaluation.training_data(config, data.train, data.scale,
                                        mesh=mesh)
  history = list(resume.history) if resume else []
  # The parameters of the selected epoch so far (diagnosis.selected_index:
  # the one definition of the selection), kept as the epochs run.
  selected = {"params": resume.selected if resume else None}

  def on_epoch(record: EpochRecord, params) -> Optional[bool]:
    history.append(record)
    if diagnosis.selected_index(history) == len(history) - 1:
      selected["params"] = params
    return None if callback is None else callback(record, params)

  start = resume.start if resume else ("pretrain", 0)
  result = train_evaluated(
      config, data, prepared, key=None if resume else key,
      params=resume.params if resume else None, on_epoch=on_epoch,
      cold_fallback=cold_fallback, start=start, epoch_fns=epoch_fns,
      max_epochs=max_epochs,
      step_scale=resume.step_scale if resume else None,
      epoch_start=resume.epoch_start if resume else None)
  params, chosen = result.params, history[-1]
  i = diagnosis.selected_index(history)
  if select == "valid" and i is not None and selected["params"] is not None:
    params, chosen = selected["params"], history[i]
  splits = {"test": data.test}
  if data.valid is not None:
    splits["valid"] = data.valid
  return TrainedModel(
      config=config, params=params, phase=chosen.phase, epoch=chosen.epoch,
      train=data.train, item_ids=data.item_ids, user_ids=data.user_ids,
      scale=data.scale, splits=splits, history=history,
      mean_predictors=evaluation.mean_predictor_rmse(data),
      cold_fallback=cold_fallback, item_titles=data.item_titles,
      plan=prepared.plan.to_dict(), name=data.name, _prepared=prepared)
