"""The runs the scripts make of :func:`glocal_jax.fit`: one evaluated run
with checkpoints and resume, N seeds as one compiled program, and
configurations that differ in their scalar hyper-parameters as one.

Each summarises its history under both protocols
(:func:`glocal_jax.diagnosis.summarise`): the paper's (best test value over
the fine-tuning epochs: it selects on the test set) and, with a validation
split, the honest one (the test metrics of the epoch of least validation
RMSE, either phase).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glocal_jax import diagnosis
from glocal_jax import epochs
from glocal_jax import evaluation
from glocal_jax import fitting
from glocal_jax import plan as plan_lib
from glocal_jax import training
from glocal_jax.config import GLocalKConfig
from glocal_jax.data.container import RatingData
from glocal_jax.runs import progress
from glocal_jax.runs.results import ConfigsResult
from glocal_jax.runs.results import ModelRun
from glocal_jax.runs.results import RunResult
from glocal_jax.runs.results import SeedsResult
from glocal_jax.runs.results import total
from glocal_jax.runs.state import Checkpointer
from glocal_jax.runs.state import RunCheckpoint
from glocal_jax.runs.state import fingerprint
from glocal_jax.training import EpochRecord

Log = Callable[[str], None]


def seed_keys(seeds: list[int]) -> jax.Array:
  """``(len(seeds), 2)``: ``jax.random.PRNGKey(s)`` of each seed, stacked
  (a stack of keys trains the seeds together)."""
  return jnp.stack([jax.random.PRNGKey(s) for s in seeds])


def init_seeds(config: GLocalKConfig, seeds: list[int],
               shape: tuple[int, int]):
  """Initial parameters of ``seeds`` stacked along a leading axis, as
  :func:`fit_seeds` draws them, for an ``(items, users)`` matrix."""
  return training.initial_params(config, seed_keys(seeds), shape)


def evaluated_run(config: GLocalKConfig, data: RatingData, seed: int, *,
                  checkpoint_dir: Optional[str] = None, resume: bool = False,
                  stop_after: Optional[int] = None, log: Log = progress.say,
                  epoch_fns: Optional[dict] = None,
                  mesh: Optional[jax.sharding.Mesh] = None,
                  cold_fallback: bool = True) -> RunResult:
  """:func:`glocal_jax.fit` with a progress line per epoch, a checkpoint
  after every epoch, resume, and the times and counts ``metrics.json``
  records.

  Args:
    config: hyper-parameters and schedule.
    data: train/test (and optional validation) ratings.
    seed: seeds the parameter initialisation (``jax.random.PRNGKey(seed)``).
    checkpoint_dir: if set, a checkpoint is written after every epoch, on
      a background thread while the next epoch runs (all are written when
      the run returns or raises); with a validation split, also one of
      the selected epoch so far, in ``checkpoint_dir/selected``.
    resume: continue from the checkpoint in ``checkpoint_dir`` (its config,
      seed and training data must match).
    stop_after: stop after this many epochs in this call (a later call with
      ``resume=True`` continues).
    log: where the progress lines go.
    epoch_fns: compiled epochs to reuse
      (:func:`glocal_jax.epochs.make_epoch_fns`).
    mesh: split the items over this mesh's devices
      (:func:`glocal_jax.sharding.device_mesh`). With several processes
      (``jax.distributed``), only process 0 logs and writes checkpoints.
    cold_fallback: as in :func:`glocal_jax.fit`.

  Returns:
    :class:`RunResult`; its warnings are also logged.
  """
  if data.train.count() == 0:
    raise ValueError(f"{data.name} has no training ratings: nothing to "
                     "train on.")
  if resume and not checkpoint_dir:
    raise ValueError("resume needs a checkpoint directory.")
  writer = jax.process_index() == 0
  if not writer:
    log, checkpoint_dir = (lambda _: None), (checkpoint_dir if resume
                                             else None)
  tic = time.perf_counter()
  memory_bytes = plan_lib.device_memory_bytes()  # read once, recorded
  prepared = evaluation.training_data(config, data.train, data.scale,
                                      mesh=mesh, memory_bytes=memory_bytes)
  prepare_seconds = time.perf_counter() - tic
  devices = 1 if mesh is None else mesh.size
  log(f"prepared the ratings as {prepared.plan.name} in "
      f"{prepare_seconds:.1f}s" + (f", items split over {devices} devices"
                                   if devices > 1 else ""))
  data_print = fingerprint(data)
  before = (RunCheckpoint.load(checkpoint_dir, config, seed, data_print, log)
            if resume else None)
  if before is not None:
    log(f"Resuming after {before.resume.start[0]} epoch "
        f"{before.resume.start[1]}.")
  key = before.key if before else jax.random.PRNGKey(seed)
  seconds_before = before.seconds if before else 0.0
  history = list(before.resume.history) if before else []
  ratio = progress.flop_ratio(config, prepared, data.train.count())
  means = evaluation.mean_predictor_rmse(data)
  plan = {**prepared.plan.to_dict(), "device_memory_bytes": memory_bytes}
  saver = (Checkpointer(checkpoint_dir, config, seed, data, data_print,
                        means, cold_fallback, prepared.plan.to_dict(), key)
           if checkpoint_dir and writer else None)

  def on_epoch(record: EpochRecord, params) -> None:
    history.append(record)
    elapsed = time.perf_counter() - tic
    log(progress.epoch_line(record, elapsed,
                            progress.eta_seconds(history, config, ratio)))
    if saver is not None:
      saver.save(record, params, history, seconds_before + elapsed)

  # The next epoch runs while a checkpoint is written. The caller's data as
  # it is: its validation split, if any, selects.
  with saver or contextlib.nullcontext():
    model = fitting.fit(
        config, data, key, callback=on_epoch, validation_fraction=0.0,
        cold_fallback=cold_fallback, prepared=prepared, epoch_fns=epoch_fns,
        max_epochs=stop_after, resume=before.resume if before else None)
  for warning in model.warnings:
    log(f"warning: {warning}")
  return RunResult(
      model=model, summary=diagnosis.summarise(model.history),
      data={**data_print, **evaluation.evaluated_counts(data)}, seed=seed,
      devices=devices, device=progress.device_info(), plan=plan,
      seconds=seconds_before + time.perf_counter() - tic,
      prepare_seconds=prepare_seconds,
      complete=len(model.history) == len(training.schedule(config)))


def _model_runs(configs: list[GLocalKConfig], history: list[EpochRecord],
                means: dict, data: RatingData) -> list[ModelRun]:
  """Each stacked model's :class:`ModelRun` of a stacked history."""
  runs = []
  for i, config in enumerate(configs):
    view = evaluation.model_view(history, i)
    summary = diagnosis.summarise(view)
    runs.append(ModelRun(config, view, summary, diagnosis.diagnose(
        summary, view, means, data.scale)))
  return runs


def fit_seeds(config: GLocalKConfig, data: RatingData, seeds: list[int], *,
              log: Log = progress.say, epoch_fns: Optional[dict] = None,
              params: Any = None, start: tuple[str, int] = ("pretrain", 0),
              cold_fallback: bool = True) -> SeedsResult:
  """Trains ``len(seeds)`` seeds as one compiled program.

  Seed ``s`` starts from ``jax.random.PRNGKey(s)``, as
  :func:`evaluated_run` does. By default the seeds run one after the other
  inside the program (``lax.map``); ``epoch_fns`` may come from
  ``make_epoch_fns(config, batched=True, seed_batching="vmap")`` to
  vectorise them instead (see docs/optimizer.md). ``params`` (stacked over
  seeds) and ``start`` continue a schedule, e.g. from
  :func:`pretrain_snapshots`; the history then holds the epochs run here
  only. Scales, the whole test set and ``cold_fallback`` as in
  :func:`glocal_jax.fit`; each seed's warnings are logged.
  """
  history = []
  tic = time.perf_counter()
  prepared = evaluation.training_data(config, data.train, data.scale,
                                      copies=len(seeds))
  ratio = progress.flop_ratio(config, prepared, data.train.count())

  def report(record: EpochRecord, params) -> None:
    history.append(record)
    m = record.metrics
    log(f"{record.phase} epoch {record.epoch}: test RMSE per seed "
        f"{np.round(m['models']['test_rmse'], 4).tolist()} ensemble "
        f"{m['ensemble']['test_rmse']:.4f} | "
        f"{time.perf_counter() - tic:.1f}s elapsed, ETA "
        f"{progress.eta_seconds(history, config, ratio):.0f}s")

  fitting.train_evaluated(
      config, data, prepared, key=None if params is not None else
      seed_keys(seeds), params=params, on_epoch=report,
      cold_fallback=cold_fallback, start=start,
      epoch_fns=epoch_fns or epochs.make_epoch_fns(config, batched=True))
  means = evaluation.mean_predictor_rmse(data)
  result = SeedsResult(
      data.name, config, list(seeds),
      _model_runs([config] * len(seeds), history, means, data),
      diagnosis.summarise(evaluation.model_view(history, None)), history,
      evaluation.evaluated_counts(data), means, progress.device_info(),
      prepared.plan.to_dict(), time.perf_counter() - tic, cold_fallback)
  for warning in result.warnings:
    log(f"warning: {warning}")
  return result


def fit_configs(configs: list[GLocalKConfig], data: RatingData, seed: int,
                *, log: Log = progress.say, seed_batching: str = "map",
                mesh: Optional[jax.sharding.Mesh] = None,
                cold_fallback: bool = True) -> ConfigsResult:
  """Trains configurations that differ only in their scalar
  hyper-parameters (:data:`glocal_jax.epochs.HYPER_FIELDS`: ``lambda_2``,
  ``lambda_s``, ``dot_scale``) as one compiled program over a
  configuration axis, each from the initialisation :func:`evaluated_run`
  draws for ``seed``.

  The hyper-parameters are traced arguments of the losses
  (``make_epoch_fns(..., hyper_axis=True)``), so one compilation serves
  every configuration; ``seed_batching`` runs them one after the other
  inside the program (``"map"``), vectorised (``"vmap"``), or spread over
  ``mesh``'s devices (``"devices"``, a mesh with axis ``"seeds"``:
  :func:`glocal_jax.sharding.seeds_on_devices`; the devices may belong to
  several processes). Metrics, scales, the whole test set and
  ``cold_fallback`` as in :func:`glocal_jax.fit`.

  Raises:
    ValueError: the configurations differ in anything else (hidden sizes,
      orientation, schedule, ...: a loop of :func:`glocal_jax.fit` trains
      those).
  """
  base = configs[0]
  for config in configs[1:]:
    other = [f for f, v in config.to_dict().items()
             if f not in epochs.HYPER_FIELDS and v != base.to_dict()[f]]
    if other:
      raise ValueError(f"fit_configs trains configurations that differ in "
                       f"{epochs.HYPER_FIELDS} only; these also differ in "
                       f"{other}.")
  hyper = epochs.hyper_of(configs)
  tic = time.perf_counter()
  history = []
  prepared = evaluation.training_data(base, data.train, data.scale,
                                      copies=len(configs))
  one = training.initial_params(base, jax.random.PRNGKey(seed), data.shape)
  params = jax.tree.map(
      lambda x: jnp.broadcast_to(x, (len(configs),) + x.shape), one)

  def report(record: EpochRecord, params) -> None:
    history.append(record)
    m = record.metrics["models"]
    split = "valid" if "valid_rmse" in m else "test"
    log(f"{record.phase} epoch {record.epoch}: {split} RMSE per "
        f"configuration {np.round(m[f'{split}_rmse'], 4).tolist()} | "
        f"{time.perf_counter() - tic:.1f}s elapsed")

  fitting.train_evaluated(
      base, data, prepared, params=params, on_epoch=report,
      cold_fallback=cold_fallback, dot_scale=hyper["dot_scale"],
      hyper=hyper, epoch_fns=epochs.make_epoch_fns(
          base, batched=True, seed_batching=seed_batching, mesh=mesh,
          hyper_axis=True))
  means = evaluation.mean_predictor_rmse(data)
  return ConfigsResult(
      _model_runs(list(configs), history, means, data),
      evaluation.evaluated_counts(data), means, progress.device_info(),
      prepared.plan.to_dict(), time.perf_counter() - tic,
      total(history, "compile_seconds"))


def pretrain_snapshots(config: GLocalKConfig, data: RatingData,
                       seeds: list[int], epochs_at: list[int], *,
                       log: Log = progress.say,
                       epoch_fns: Optional[dict] = None) -> dict:
  """Stacked parameters after each of ``epochs_at`` pre-training epochs.

  One pre-training run of ``max(epochs_at)`` epochs (seeds as in
  :func:`fit_seeds`) serves every entry: training is deterministic, so
  ``fit_seeds(config.replace(pretrain_epochs=e), ..., params=snapshot,
  start=("pretrain", e))`` equals a run with ``e`` pre-training epochs from
  scratch, without repeating the shared epochs (paper Figure 3).

  Returns:
    ``{e: (params stacked over seeds, pre-training seconds to epoch e)}``;
    ``e = 0`` is the initialisation.
  """
  params = init_seeds(config, seeds, data.shape)
  wanted = set(epochs_at)
  snapshots = {0: (params, 0.0)} if 0 in wanted else {}
  if max(epochs_at) == 0:
    return snapshots
  tic = time.perf_counter()

  def callback(record: EpochRecord, params) -> None:
    if record.epoch in wanted:
      snapshots[record.epoch] = (params, time.perf_counter() - tic)
      log(f"pretrain epoch {record.epoch}: snapshot | "
          f"{time.perf_counter() - tic:.1f}s elapsed")

  schedule = config.replace(pretrain_epochs=max(epochs_at), finetune_epochs=0)
  training.train(schedule, evaluation.training_data(
      config, data.train, data.scale, copies=len(seeds)),
                 params=params, callback=callback, epoch_fns=epoch_fns or
                 epochs.make_epoch_fns(config, batched=True))
  return snapshots
