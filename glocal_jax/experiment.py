"""One evaluated training run: what the scripts in ``experiments/`` share.

:func:`fit` trains GLocal-K on a :class:`~glocal_jax.data.RatingData`,
evaluates after every epoch, optionally checkpoints and resumes, and returns
a JSON-able summary with both protocols:

* ``best`` -- the paper's protocol: the best test value of each metric over
  the fine-tuning epochs (it selects on the test set);
* ``selected`` -- the honest protocol, when the data has a validation split:
  the test metrics of the fine-tuning epoch with the lowest validation RMSE.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

import functools

import jax
import jax.numpy as jnp
import numpy as np

from glocal_jax import checkpoint, metrics, representations, training
from glocal_jax.config import GLocalKConfig
from glocal_jax.data import RatingData
from glocal_jax.representations import TrainingData

METRICS: tuple[str, ...] = ("rmse", "mae", "ndcg")
HIGHER_IS_BETTER = {"rmse": False, "mae": False, "ndcg": True}


def device_info() -> dict:
  """JAX platform and device kind of the default device."""
  device = jax.devices()[0]
  return {"platform": device.platform, "kind": device.device_kind,
          "count": jax.device_count()}


def _splits(data: RatingData) -> dict:
  """The evaluated splits of ``data``: test, and validation if any."""
  splits = {"test": data.test}
  if data.valid is not None:
    splits["valid"] = data.valid
  return jax.device_put(splits)


@functools.partial(jax.jit, static_argnums=(3, 5, 6))
def _metrics(params, train_data: TrainingData, splits: dict, finetuned: bool,
             dot_scale, aggregation, stacked: bool) -> dict:
  """Every metric of every split in one compiled call; with ``stacked``
  parameters, per seed and of the seeds' ensemble (the mean clipped
  prediction)."""
  out = {}
  for split, targets in splits.items():
    predict = lambda p: representations.predict(
        p, train_data, targets.items, targets.users, finetuned, dot_scale,
        aggregation)
    if not stacked:
      out.update({f"{split}_{k}": v for k, v in metrics.evaluate(
          predict(params), targets).items()})
      continue
    pred = jax.vmap(predict)(params)
    per_seed = jax.vmap(metrics.evaluate, in_axes=(0, None))(pred, targets)
    out.update({f"{split}_{k}": v for k, v in per_seed.items()})
    ensemble = jnp.mean(jnp.clip(pred, 1.0, 5.0), axis=0)
    out.update({f"ensemble_{split}_{k}": v for k, v in metrics.evaluate(
        ensemble, targets).items()})
  return out


def evaluate(config: GLocalKConfig, params, data: RatingData,
             train_data: TrainingData, phase: str) -> dict:
  """Test (and validation, if any) metrics of ``params`` after ``phase``.

  ``train_data``: ``data.train`` prepared (:func:`training.prepare`).
  Parameters stacked over seeds give a list per metric (one value per
  seed) and ``ensemble_*`` values. One compiled call, one transfer.
  """
  stacked = training._is_stacked(params)  # pylint: disable=protected-access
  out = jax.device_get(_metrics(params, train_data, _splits(data),
                                phase == "finetune", config.dot_scale,
                                config.aggregation, stacked))
  return {k: (np.asarray(v).tolist() if np.ndim(v) else float(v))
          for k, v in out.items()}


def summarise(history: list[dict]) -> dict:
  """``best`` / ``final`` / ``selected`` of an epoch history (dicts with
  ``phase``, ``epoch`` and ``metrics``)."""
  if not history:
    return {}
  phase = "finetune" if any(h["phase"] == "finetune" for h in history) else (
      "pretrain")
  epochs = [h for h in history if h["phase"] == phase]
  summary = {"phase": phase, "final": {
      k: epochs[-1]["metrics"][f"test_{k}"] for k in METRICS}}
  summary["final"]["epoch"] = epochs[-1]["epoch"]
  best = {}
  for k in METRICS:
    values = [h["metrics"][f"test_{k}"] for h in epochs]
    i = int(np.argmax(values) if HIGHER_IS_BETTER[k] else np.argmin(values))
    best[k] = values[i]
    best[f"{k}_epoch"] = epochs[i]["epoch"]
  summary["best"] = best
  if "valid_rmse" in epochs[0]["metrics"]:
    i = int(np.argmin([h["metrics"]["valid_rmse"] for h in epochs]))
    summary["selected"] = {k: epochs[i]["metrics"][f"test_{k}"]
                           for k in METRICS}
    summary["selected"]["epoch"] = epochs[i]["epoch"]
    summary["selected"]["valid_rmse"] = epochs[i]["metrics"]["valid_rmse"]
  return summary


def _eta(history: list[dict], config: GLocalKConfig) -> float:
  """Seconds left, from the mean epoch time of each phase so far (a
  fine-tuning epoch is guessed at twice a pre-training one until seen)."""
  mean = {}
  for phase in training.PHASES:
    times = [h["seconds"] for h in history[1:] if h["phase"] == phase]
    if times:
      mean[phase] = float(np.mean(times))
  mean.setdefault("pretrain", history[-1]["seconds"])
  mean.setdefault("finetune", 2 * mean["pretrain"])
  last = history[-1]
  left = 0.0
  for phase in training.PHASES:
    total = getattr(config, f"{phase}_epochs")
    if phase == last["phase"]:
      left += (total - last["epoch"]) * mean[phase]
    elif training.PHASES.index(phase) > training.PHASES.index(last["phase"]):
      left += total * mean[phase]
  return left


def fit(config: GLocalKConfig, data: RatingData, seed: int, *,
        checkpoint_dir: Optional[str] = None, resume: bool = False,
        stop_after: Optional[int] = None,
        log: Callable[[str], None] = print,
        epoch_fns: Optional[dict] = None) -> dict:
  """Trains, evaluates every epoch, and summarises one run.

  Args:
    config: hyper-parameters and schedule.
    data: train/test (and optional validation) ratings.
    seed: seeds the parameter initialisation (``jax.random.PRNGKey(seed)``).
    checkpoint_dir: if set, a checkpoint is written after every epoch.
    resume: continue from the checkpoint in ``checkpoint_dir`` (its config
      and seed must match).
    stop_after: stop after this many epochs in this call (a later call with
      ``resume=True`` continues).
    log: where the per-epoch lines go.
    epoch_fns: compiled epochs to reuse (see
      :func:`glocal_jax.training.make_epoch_fns`).

  Returns:
    JSON-able dict: ``seed``, ``config``, ``device``, ``seconds`` (training
    wall time, over all resumed calls), ``history``, ``best``, ``final``
    and, with a validation split, ``selected``; ``complete`` says whether the schedule
    ran to its end.
  """
  key = jax.random.PRNGKey(seed)
  params, start, history, seconds_before = None, ("pretrain", 0), [], 0.0
  if resume:
    if not checkpoint_dir:
      raise ValueError("resume needs a checkpoint directory.")
    ckpt = checkpoint.load(checkpoint_dir)
    if ckpt is None:
      log(f"No checkpoint in {checkpoint_dir}; starting from scratch.")
    else:
      if (GLocalKConfig(**ckpt.meta["config"]) != config
          or ckpt.meta["seed"] != seed):
        raise ValueError(
            f"The checkpoint in {checkpoint_dir} was written with another "
            f"config or seed ({ckpt.meta['config']}, seed "
            f"{ckpt.meta['seed']}); use the same flags or another folder.")
      params, key, history = ckpt.params, ckpt.key, ckpt.meta["history"]
      seconds_before = ckpt.meta["seconds"]
      start = (ckpt.meta["phase"], ckpt.meta["epoch"])
      log(f"Resuming after {start[0]} epoch {start[1]}.")
  done_before = len(history)
  train_data = training.prepare(config, data.train)
  if checkpoint_dir:  # the ratings and ids, so a checkpoint can recommend
    host = data.train.to_host()
    training_arrays = {"item_ids": data.item_ids, "user_ids": data.user_ids,
                       "train_rows": host.items, "train_cols": host.users,
                       "train_values": host.values,
                       "shape": np.asarray(data.shape)}
  tic = time.perf_counter()

  class _Stop(Exception):
    pass

  def callback(record: training.EpochRecord, params) -> dict:
    record.metrics = evaluate(config, params, data, train_data, record.phase)
    history.append(record.to_dict())
    log(f"{record.phase} epoch {record.epoch}: loss {record.loss:.2f} "
        f"({record.evaluations} evals) test RMSE "
        f"{record.metrics['test_rmse']:.4f} MAE {record.metrics['test_mae']:.4f}"
        f" NDCG {record.metrics['test_ndcg']:.4f}"
        + (f" valid RMSE {record.metrics['valid_rmse']:.4f}"
           if "valid_rmse" in record.metrics else "")
        + f" | {time.perf_counter() - tic:.1f}s elapsed, ETA "
        f"{_eta(history, config):.0f}s")
    if checkpoint_dir:
      checkpoint.save(checkpoint_dir, params, key, {
          "config": config.to_dict(), "seed": seed, "phase": record.phase,
          "epoch": record.epoch, "history": history,
          "seconds": seconds_before + time.perf_counter() - tic},
          arrays=training_arrays)
    if stop_after is not None and len(history) - done_before >= stop_after:
      raise _Stop
    return record.metrics

  complete = True
  try:
    training.train(config, train_data, key, params=params, start=start,
                   callback=callback, epoch_fns=epoch_fns)
  except _Stop:
    complete = len(history) == config.pretrain_epochs + config.finetune_epochs
  return {"dataset": data.name, "seed": seed, "config": config.to_dict(),
          "device": device_info(), "plan": train_data.plan.to_dict(),
          "seconds": seconds_before + time.perf_counter() - tic,
          "complete": complete, "history": history, **summarise(history)}


def _seed_view(history: list[dict], index: Optional[int]) -> list[dict]:
  """The history of one seed (``index``) or of the ensemble (None)."""
  view = []
  for h in history:
    m = h["metrics"]
    if index is None:
      picked = {k[len("ensemble_"):]: v for k, v in m.items()
                if k.startswith("ensemble_")}
    else:
      picked = {k: v[index] for k, v in m.items()
                if not k.startswith("ensemble_")}
    view.append({**h, "metrics": picked})
  return view


def fit_seeds(config: GLocalKConfig, data: RatingData, seeds: list[int], *,
              log: Callable[[str], None] = print,
              epoch_fns: Optional[dict] = None,
              params=None, start: tuple[str, int] = ("pretrain", 0)) -> dict:
  """Trains ``len(seeds)`` seeds as one vmapped, compiled program.

  Seed ``s`` starts from ``jax.random.PRNGKey(s)``, as :func:`fit` does.
  ``epoch_fns`` may come from ``make_epoch_fns(config, batched=True,
  seed_batching="map")`` to run the seeds one after the other inside the
  program instead (see docs/optimizer.md). ``params`` (stacked over seeds)
  and ``start`` continue a schedule, e.g. from :func:`pretrain_snapshots`;
  the history then holds the epochs run here only.

  Returns:
    JSON-able dict: ``seeds``, ``config``, ``device``, ``seconds``,
    ``history`` (per-seed lists and ensemble values per epoch),
    ``per_seed`` (each seed's :func:`summarise`), ``mean`` / ``std`` over
    seeds of each summary value, and ``ensemble`` (:func:`summarise` of the
    mean clipped prediction).
  """
  keys = jax.numpy.stack([jax.random.PRNGKey(s) for s in seeds])
  history = []
  tic = time.perf_counter()
  train_data = training.prepare(config, data.train, copies=len(seeds))

  def callback(record: training.EpochRecord, params) -> dict:
    record.metrics = evaluate(config, params, data, train_data, record.phase)
    history.append(record.to_dict())
    m = record.metrics
    log(f"{record.phase} epoch {record.epoch}: test RMSE per seed "
        f"{np.round(m['test_rmse'], 4).tolist()} ensemble "
        f"{m['ensemble_test_rmse']:.4f} | {time.perf_counter() - tic:.1f}s "
        f"elapsed, ETA {_eta(history, config):.0f}s")
    return record.metrics

  epoch_fns = epoch_fns or training.make_epoch_fns(config, batched=True)
  training.train(config, train_data, keys, params=params, start=start,
                 callback=callback, epoch_fns=epoch_fns)
  per_seed = [summarise(_seed_view(history, i)) for i in range(len(seeds))]
  stats = {}
  for name in ("mean", "std"):
    reduce = np.mean if name == "mean" else np.std
    stats[name] = {
        block: {k: float(reduce([s[block][k] for s in per_seed]))
                for k in per_seed[0][block] if not k.endswith("epoch")}
        for block in ("best", "final", "selected") if block in per_seed[0]}
  return {"dataset": data.name, "seeds": list(seeds),
          "config": config.to_dict(), "device": device_info(),
          "plan": train_data.plan.to_dict(),
          "seconds": time.perf_counter() - tic, "history": history,
          "per_seed": per_seed, **stats,
          "ensemble": summarise(_seed_view(history, None))}


def init_seeds(config: GLocalKConfig, seeds: list[int],
               shape: tuple[int, int]):
  """Initial parameters of ``seeds`` stacked along a leading axis, as
  :func:`fit_seeds` draws them, for an ``(items, users)`` matrix."""
  keys = jax.numpy.stack([jax.random.PRNGKey(s) for s in seeds])
  return jax.vmap(lambda k: training.init_params(config, k, *shape))(keys)


def pretrain_snapshots(config: GLocalKConfig, data: RatingData,
                       seeds: list[int], epochs: list[int], *,
                       log: Callable[[str], None] = print,
                       epoch_fns: Optional[dict] = None) -> dict:
  """Stacked parameters after each of ``epochs`` pre-training epochs.

  One pre-training run of ``max(epochs)`` epochs (seeds as in
  :func:`fit_seeds`) serves every entry: training is deterministic, so
  ``fit_seeds(config.replace(pretrain_epochs=e), ..., params=snapshot,
  start=("pretrain", e))`` equals a run with ``e`` pre-training epochs from
  scratch, without repeating the shared epochs (paper Figure 3).

  Returns:
    ``{e: (params stacked over seeds, pre-training seconds to epoch e)}``;
    ``e = 0`` is the initialisation.
  """
  params = init_seeds(config, seeds, data.shape)
  wanted = set(epochs)
  snapshots = {0: (params, 0.0)} if 0 in wanted else {}
  if max(epochs) == 0:
    return snapshots
  tic = time.perf_counter()

  def callback(record: training.EpochRecord, params) -> None:
    if record.epoch in wanted:
      snapshots[record.epoch] = (params, time.perf_counter() - tic)
      log(f"pretrain epoch {record.epoch}: snapshot | "
          f"{time.perf_counter() - tic:.1f}s elapsed")

  schedule = config.replace(pretrain_epochs=max(epochs), finetune_epochs=0)
  training.train(schedule, training.prepare(config, data.train, len(seeds)),
                 params=params, callback=callback, epoch_fns=epoch_fns or
                 training.make_epoch_fns(config, batched=True))
  return snapshots
