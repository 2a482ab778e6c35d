"""What a run says while it trains: the epoch lines, the time left, the
device."""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np

from glocal_jax import flops
from glocal_jax import training
from glocal_jax.config import GLocalKConfig
from glocal_jax.representations import TrainingData
from glocal_jax.training import EpochRecord


def say(line: str) -> None:
  """The default ``log``: prints ``line`` at once (flushed, so that a run's
  progress shows as it happens, also through a pipe or ``tee``)."""
  print(line, flush=True)


def device_info() -> dict:
  """JAX platform and device kind of the default device."""
  device = jax.devices()[0]
  return {"platform": device.platform, "kind": device.device_kind,
          "count": jax.device_count()}


def phase_flops(config: GLocalKConfig, train_data: TrainingData,
                nnz: int) -> dict[str, float]:
  """FLOPs of one loss-and-gradient evaluation of each phase
  (:func:`glocal_jax.flops.per_evaluation`) of ``nnz`` training ratings
  (passed in: a process need not be able to read sharded data)."""
  support = train_data.support.sizes if train_data.support else None
  return {phase: flops.per_evaluation(
      train_data.plan, phase, train_data.shape, nnz, config.hidden,
      n_dim=config.n_dim, kernel_size=config.kernel_size,
      conv_layers=config.conv_layers, aggregation=config.aggregation,
      support=support) for phase in training.PHASES}


def flop_ratio(config: GLocalKConfig, train_data: TrainingData,
               nnz: int) -> float:
  """Fine-tuning over pre-training FLOPs per evaluation
  (:func:`phase_flops`)."""
  counts = phase_flops(config, train_data, nnz)
  return counts["finetune"] / counts["pretrain"]


def eta_seconds(history: Sequence[EpochRecord], config: GLocalKConfig,
                flop_ratio: float) -> float:
  """Seconds left in the schedule after the last epoch of ``history``.

  From the measured seconds per iteration of each phase (compilation
  excluded) plus the evaluation seconds per epoch, each from the later
  epochs where there are any (a phase's first epoch and the first
  evaluation run cold: caches, the evaluation's own compilation, which
  would count once per epoch left: after the first epoch the evaluation
  is not counted yet); a phase
  not run yet is estimated from one that has, scaled by ``flop_ratio``
  (fine-tuning over pre-training FLOPs per evaluation,
  :mod:`glocal_jax.flops`).

  Args:
    history: the epoch records so far.
    config: the schedule.
    flop_ratio: fine-tuning over pre-training cost per iteration.
  """
  later = lambda records: records[1:] if len(records) > 1 else records
  rate = {}
  for phase in training.PHASES:
    own = later([h for h in history if h.phase == phase])
    iterations = sum(int(np.max(h.iterations)) for h in own)
    if iterations:
      rate[phase] = sum(h.seconds for h in own) / iterations
  if "pretrain" not in rate:
    rate["pretrain"] = rate["finetune"] / flop_ratio
  rate.setdefault("finetune", rate["pretrain"] * flop_ratio)
  evaluation = (float(np.mean([h.evaluation_seconds for h in history[1:]]))
                if len(history) > 1 else 0.0)
  last = history[-1]
  left = training.schedule(config, (last.phase, last.epoch))
  return sum(rate[phase] * getattr(config, f"{phase}_maxiter") + evaluation
             for phase, _ in left)


def epoch_line(record: EpochRecord, elapsed: float, eta: float) -> str:
  """The log line of one epoch (one model)."""
  m = record.metrics
  line = (f"{record.phase} epoch {record.epoch}: loss {record.loss:.2f} "
          f"({record.evaluations} evaluations, {record.seconds:.1f}s")
  if record.compile_seconds:
    line += f" + {record.compile_seconds:.1f}s compiling"
  line += (f") test RMSE {m['test_rmse']:.4f} MAE {m['test_mae']:.4f} NDCG "
           f"{m['test_ndcg']:.4f}")
  if "valid_rmse" in m:
    line += f" valid RMSE {m['valid_rmse']:.4f}"
  return line + f" | {elapsed:.1f}s elapsed, ETA {eta:.0f}s"
