"""Rows of the paper's tables and figures: several seeds, both protocols.

A row trains ``--seeds`` seeds of one configuration as one compiled
program (:func:`glocal_jax.runs.fit_seeds`), or fits a mean
predictor, and summarises the test metrics under one protocol: ``paper``
(the best fine-tuning epoch on test) or ``validation`` (the epoch selected
on a held-out share of the training ratings).
"""

from __future__ import annotations

import functools
import time

from absl import flags
import jax
import numpy as np

import glocal_jax as gj
from glocal_jax import data as gdata
from glocal_jax import epochs
from glocal_jax import evaluation
from glocal_jax import runs
from glocal_jax import sharding

from cli import ENSEMBLES
from cli import MEAN_BASELINES
from cli import config_for
from cli import device_count
from cli import fail

FLAGS = flags.FLAGS


def log_line(line: str) -> None:
  print("  " + line)


def model_config(dataset: str, model: str, **overrides) -> gj.GLocalKConfig:
  """GLocal-K, or a baseline trained for as many L-BFGS-B epochs.

  ``sparsefc``: the local-kernel AE alone (pre-training only) for
  ``pretrain_epochs + finetune_epochs`` epochs; ``i-autorec``: the same with
  plain dense layers and one hidden layer of 500 (Sedhain et al. 2015).
  """
  config = config_for(dataset, **overrides)
  total = config.pretrain_epochs + config.finetune_epochs
  if model == "sparsefc":
    return config.replace(pretrain_epochs=total, finetune_epochs=0)
  if model == "i-autorec":
    return config.replace(pretrain_epochs=total, finetune_epochs=0,
                          local_kernel=False, hidden=(500,))
  return config


def batched_epoch_fns(config: gj.GLocalKConfig) -> dict:
  """Compiled epochs over ``--seeds`` seeds, shared by every row whose
  config differs only in the number of epochs."""
  return _batched_epoch_fns(config.replace(pretrain_epochs=1,
                                           finetune_epochs=1))


@functools.lru_cache(maxsize=None)
def _batched_epoch_fns(config: gj.GLocalKConfig) -> dict:
  count = device_count()
  if count > 1:
    return epochs.make_epoch_fns(
        config, batched=True, seed_batching="devices",
        mesh=sharding.device_mesh(count, sharding.SEEDS))
  return epochs.make_epoch_fns(config, batched=True,
                               seed_batching=FLAGS.seed_batching)


def seed_batching() -> str:
  """How the seeds of a row run: spread over ``--devices``, or
  ``--seed_batching`` on one device."""
  count = device_count()
  return f"devices({count})" if count > 1 else FLAGS.seed_batching


def protocol_data(data: gdata.RatingData, protocol: str) -> gdata.RatingData:
  """``data`` as trained on under ``protocol`` (validation: a seeded share
  of the training ratings held out)."""
  if protocol == "validation":
    return gdata.split_validation(data, FLAGS.validation_fraction,
                                  FLAGS.validation_seed)
  return data


def summary_row(dataset: str, fields: dict, protocol: str, mean: dict,
                std: dict, ensemble: dict, per_seed: list[dict], *,
                seed_batching, seconds: float, device: str,
                config: dict) -> dict:
  """One JSON row of a table; ``mean``, ``std``, ``ensemble`` and each of
  ``per_seed`` map each metric to its value."""
  row = {"dataset": dataset, **fields, "protocol": protocol,
         "seeds": len(per_seed), "seed_batching": seed_batching}
  for k in evaluation.METRICS:
    row.update({f"{k}_mean": mean[k], f"{k}_std": std[k]})
  row.update({f"ensemble_{k}": ensemble[k] for k in evaluation.METRICS})
  row.update(seconds=round(seconds, 1), device=device, config=config,
             per_seed_rmse=[s["rmse"] for s in per_seed])
  return row


def run_row(data: gdata.RatingData, config: gj.GLocalKConfig,
            protocol: str, snapshot=None, **fields) -> dict:
  """Trains ``--seeds`` seeds on ``data`` and summarises one table row.

  ``snapshot``: optional ``(stacked params, seconds)`` after
  ``config.pretrain_epochs`` pre-training epochs on
  ``protocol_data(data, protocol)`` to fine-tune from; its seconds count in
  the row's.
  """
  data = protocol_data(data, protocol)
  seeds = list(range(FLAGS.seeds))
  print(f"== {fields} protocol={protocol}: {data.summary()}")
  params, seconds_before, start = None, 0.0, ("pretrain", 0)
  if snapshot is not None:
    params, seconds_before = snapshot
    start = ("pretrain", config.pretrain_epochs)
  result = runs.fit_seeds(config, data, seeds, log=log_line,
                          epoch_fns=batched_epoch_fns(config),
                          params=params, start=start,
                          cold_fallback=FLAGS.cold_fallback)
  block = "best" if protocol == "paper" else "selected"
  stats = result.statistics()
  row = summary_row(data.name, fields, protocol, stats["mean"][block],
                    stats["std"][block],
                    result.ensemble.to_dict()[block],
                    [run.summary.to_dict()[block] for run in result.runs],
                    seed_batching=seed_batching(),
                    seconds=result.seconds + seconds_before,
                    device=result.device["kind"],
                    config=result.config.to_dict())
  print(f"   -> RMSE {row['rmse_mean']:.4f} +- {row['rmse_std']:.4f}, "
        f"ensemble {row['ensemble_rmse']:.4f}, {row['seconds']}s")
  return row


def run_ensemble_row(data: gdata.RatingData, dataset: str, model: str,
                     protocol: str, **fields) -> dict:
  """GLocal-K's item-based and user-based models averaged: for each of
  ``--seeds`` seeds, the mean of the two models' predictions (each
  :func:`glocal_jax.fit` with the data set's preset, at its epoch selected
  on validation). ``rmse_mean``/``std`` are over the seeds' pairs;
  ``items_rmse_mean`` and ``users_rmse_mean`` are the two models' own; the
  ``ensemble_*`` values average all the seeds' models of both."""
  if protocol != "validation":
    fail(f"{model} selects each model's epoch on validation: "
         "--protocols=validation")
  data = protocol_data(data, protocol)
  seeds = list(range(FLAGS.seeds))
  print(f"== {model} protocol={protocol}: {data.summary()}")
  tic = time.perf_counter()
  test = data.test.to_host()
  measure = lambda pred: {k: float(v) for k, v in evaluation.scaled_metrics(
      np.asarray(pred, np.float32), test, data.scale).items()}
  predictions, alone = {}, {"items": [], "users": []}
  for orientation in ("items", "users"):
    config = model_config(dataset, "glocal-k", orientation=orientation)
    prepared = evaluation.training_data(config, data.train, data.scale)
    fns = epochs.make_epoch_fns(config)  # compiled once for the seeds
    for seed in seeds:
      trained = gj.fit(config, data, jax.random.PRNGKey(seed),
                       prepared=prepared, epoch_fns=fns,
                       cold_fallback=FLAGS.cold_fallback)
      predictions[orientation, seed] = trained.predict_indices(test.items,
                                                               test.users)
      alone[orientation].append(measure(predictions[orientation, seed]))
      log_line(f"{orientation} seed {seed}: {trained.phase} epoch "
               f"{trained.epoch} selected, test RMSE "
               f"{alone[orientation][-1]['rmse']:.4f}")
  per_seed = [measure((predictions["items", s] + predictions["users", s])
                      / 2) for s in seeds]
  stats = {name: {k: float(reduce([m[k] for m in per_seed]))
                  for k in evaluation.METRICS}
           for name, reduce in (("mean", np.mean), ("std", np.std))}
  row = summary_row(
      data.name, {"model": model, **fields}, protocol, stats["mean"],
      stats["std"], measure(np.mean(list(predictions.values()), axis=0)),
      per_seed, seed_batching="loop", seconds=time.perf_counter() - tic,
      device=runs.device_info()["kind"],
      config=model_config(dataset, "glocal-k").to_dict())
  for orientation, found in alone.items():
    row[f"{orientation}_rmse_mean"] = float(np.mean([m["rmse"]
                                                     for m in found]))
  print(f"   -> RMSE {row['rmse_mean']:.4f} +- {row['rmse_std']:.4f} "
        f"(items alone {row['items_rmse_mean']:.4f}, users alone "
        f"{row['users_rmse_mean']:.4f}), {row['seconds']}s")
  return row


def run_model_row(data: gdata.RatingData, dataset: str, model: str,
                  protocol: str, **fields) -> dict:
  """One row of ``model`` on ``data``: ``--seeds`` trained seeds
  (:func:`run_row`), an ensemble (:func:`run_ensemble_row`), or a mean
  predictor fitted to the protocol's training ratings (one deterministic
  fit: ``seeds`` 1, std 0)."""
  if model in ENSEMBLES:
    return run_ensemble_row(data, dataset, model, protocol, **fields)
  if model not in MEAN_BASELINES:
    return run_row(data, model_config(dataset, model), protocol, model=model,
                   **fields)
  data = protocol_data(data, protocol)
  start = time.perf_counter()
  predictions = gj.mean_predictions(data.train, data.test.items,
                                    data.test.users, MEAN_BASELINES[model])
  result = {k: float(v) for k, v in evaluation.scaled_metrics(
      predictions, data.test, data.scale).items()}
  seconds = time.perf_counter() - start
  row = summary_row(data.name, {"model": model, **fields}, protocol, result,
                    dict.fromkeys(evaluation.METRICS, 0.0), result, [result],
                    seed_batching=None, seconds=seconds,
                    device=runs.device_info()["kind"],
                    config={"predictor": MEAN_BASELINES[model]})
  print(f"== {model} {fields} protocol={protocol}: RMSE {result['rmse']:.4f}")
  return row
