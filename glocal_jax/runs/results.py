"""The typed results of the runs (:mod:`glocal_jax.runs.drivers`), each
with ``to_dict``: the JSON the scripts write (``metrics.json``, the tables'
rows, ``tune.json``)."""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from glocal_jax.config import GLocalKConfig
from glocal_jax.diagnosis import Summary
from glocal_jax.trained import TrainedModel
from glocal_jax.training import EpochRecord


def total(history: list[EpochRecord], name: str) -> float:
  """The sum of the records' ``name`` (e.g. ``"seconds"``)."""
  return float(sum(getattr(h, name) for h in history))


@dataclasses.dataclass
class RunResult:
  """One evaluated run (:func:`evaluated_run`).

  Attributes:
    model: the :class:`~glocal_jax.TrainedModel` (selected on validation,
      when the data has a validation split).
    summary: its history under both protocols.
    data: the training data's fingerprint and
      :func:`~glocal_jax.evaluation.evaluated_counts`.
    seed, devices, device, plan: what ran where.
    seconds: wall time over all resumed calls; ``prepare_seconds`` of it
      preparing the data (the history splits the rest into training,
      evaluation and compilation).
    complete: whether the schedule ran to its end.
  """
  model: TrainedModel
  summary: Optional[Summary]
  data: dict
  seed: int
  devices: int
  device: dict
  plan: dict
  seconds: float
  prepare_seconds: float
  complete: bool

  @property
  def history(self) -> list[EpochRecord]:
    return self.model.history

  @property
  def warnings(self) -> list[str]:
    return self.model.warnings

  def to_dict(self) -> dict:
    """The JSON of ``metrics.json`` (without what the script adds)."""
    model = self.model
    return {"dataset": model.name, "seed": self.seed,
            "config": model.config.to_dict(), "device": self.device,
            "devices": self.devices, "plan": self.plan, "data": self.data,
            "cold_fallback": model.cold_fallback,
            "mean_predictors": model.mean_predictors,
            "warnings": self.warnings, "seconds": self.seconds,
            "train_seconds": total(self.history, "seconds"),
            "evaluation_seconds": total(self.history, "evaluation_seconds"),
            "compile_seconds": total(self.history, "compile_seconds"),
            "prepare_seconds": self.prepare_seconds,
            "complete": self.complete,
            "history": [h.to_dict() for h in self.history],
            **(self.summary.to_dict() if self.summary else {})}


@dataclasses.dataclass
class ModelRun:
  """One model of several trained together: its config, history (its own
  metrics), summary and diagnosis."""
  config: GLocalKConfig
  history: list[EpochRecord]
  summary: Optional[Summary]
  warnings: list[str]

  def to_dict(self) -> dict:
    return {"config": self.config.to_dict(),
            **(self.summary.to_dict() if self.summary else {}),
            "warnings": self.warnings,
            "history": [h.to_dict() for h in self.history]}


@dataclasses.dataclass
class SeedsResult:
  """Seeds of one configuration trained together (:func:`fit_seeds`).

  Attributes:
    seeds: the seeds.
    runs: each seed's :class:`ModelRun`.
    ensemble: the summary of the seeds' mean prediction.
    history: the stacked history (metrics per seed and of the ensemble).
    data, mean_predictors, device, plan, seconds: as in :class:`RunResult`.
  """
  name: str
  config: GLocalKConfig
  seeds: list[int]
  runs: list[ModelRun]
  ensemble: Optional[Summary]
  history: list[EpochRecord]
  data: dict
  mean_predictors: dict
  device: dict
  plan: dict
  seconds: float
  cold_fallback: bool = True

  @property
  def warnings(self) -> list[str]:
    return [f"seed {seed}: {w}" for seed, run in zip(self.seeds, self.runs,
                                                      strict=True)
            for w in run.warnings]

  def statistics(self) -> dict[str, dict]:
    """``{"mean": ..., "std": ...}`` over seeds of each protocol's
    (``best``, ``final``, ``selected``) metric values."""
    per_seed = [run.summary.to_dict() for run in self.runs]
    stats = {}
    for name, reduce in (("mean", np.mean), ("std", np.std)):
      stats[name] = {
          block: {k: float(reduce([np.nan if s[block][k] is None else
                                   s[block][k] for s in per_seed]))
                  for k in per_seed[0][block]
                  if not k.endswith("epoch") and k != "phase"}
          for block in ("best", "final", "selected") if block in per_seed[0]}
    return stats

  def to_dict(self) -> dict:
    return {"dataset": self.name, "seeds": list(self.seeds),
            "config": self.config.to_dict(), "device": self.device,
            "plan": self.plan, "data": self.data,
            "cold_fallback": self.cold_fallback,
            "mean_predictors": self.mean_predictors,
            "warnings": self.warnings, "seconds": self.seconds,
            "history": [h.to_dict() for h in self.history],
            "per_seed": [run.summary.to_dict() for run in self.runs],
            **self.statistics(),
            "ensemble": self.ensemble.to_dict() if self.ensemble else {}}


@dataclasses.dataclass
class ConfigsResult:
  """Configurations trained together (:func:`fit_configs`): each one's
  :class:`ModelRun`, and what ran where."""
  runs: list[ModelRun]
  data: dict
  mean_predictors: dict
  device: dict
  plan: dict
  seconds: float
  compile_seconds: float

  def to_dict(self) -> dict:
    return {"runs": [run.to_dict() for run in self.runs],
            "seconds": self.seconds, "compile_seconds": self.compile_seconds,
            "device": self.device, "plan": self.plan, "data": self.data,
            "mean_predictors": self.mean_predictors}
