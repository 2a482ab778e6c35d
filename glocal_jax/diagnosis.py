"""A run's history summarised under both protocols, and what is wrong with it.

:func:`summarise` reads the epochs' metrics (:class:`~glocal_jax.training.
EpochRecord` with :func:`glocal_jax.evaluation.split_metrics`) under both
protocols: the paper's (the best test value of each metric over the last
phase's epochs: it selects on the test set) and the honest one (the test
metrics of the epoch of least validation RMSE, among the epochs of both
phases). :func:`diagnose` says what a user of the model must know: a
collapse, a fine-tuning that did not help, a model no better than a mean.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from glocal_jax.data.container import RatingScale
from glocal_jax.evaluation import HIGHER_IS_BETTER
from glocal_jax.evaluation import METRICS
from glocal_jax.training import EpochRecord

# Predictions whose item spread (metrics.item_spread) is below this share of
# the rating range are one value per user: a collapsed model.
COLLAPSE_SPREAD = 1e-3


def _metric(record: EpochRecord, name: str) -> Optional[float]:
  """``record.metrics[name]`` as a float, None where absent or NaN."""
  value = record.metrics.get(name)
  if value is None or value != value:
    return None
  return float(value)


def _value(record: EpochRecord, name: str) -> float:
  """``record.metrics[name]`` as a float (NaN where absent: undefined, as
  a test metric on no test ratings)."""
  value = record.metrics.get(name)
  return float("nan") if value is None else float(value)


@dataclasses.dataclass(frozen=True)
class Summary:
  """A history under both protocols.

  Attributes:
    phase: the last phase run (``"finetune"`` once fine-tuning began).
    final: the last epoch's test metrics and ``epoch``.
    best: the paper's protocol: each metric's best test value over
      ``phase``'s epochs and its epoch (``rmse_epoch``, ...); None where
      no epoch has the metric.
    selected: the honest protocol, with a validation split: the test
      metrics of the epoch of least validation RMSE (either phase), its
      ``phase``, ``epoch`` and ``valid_rmse``; else None.
  """
  phase: str
  final: dict
  best: dict
  selected: Optional[dict] = None

  def to_dict(self) -> dict:
    """The JSON form of the run files (``selected`` only when there is
    one)."""
    out = {"phase": self.phase, "final": dict(self.final),
           "best": dict(self.best)}
    if self.selected is not None:
      out["selected"] = dict(self.selected)
    return out


def selected_index(history: Sequence[EpochRecord]) -> Optional[int]:
  """Index of the epoch of least validation RMSE among ``history``'s (the
  first such, of either phase), None without validation metrics."""
  valid = [_metric(h, "valid_rmse") for h in history]
  if not valid or all(v is None for v in valid):
    return None
  return int(np.nanargmin([np.nan if v is None else v for v in valid]))


def summarise(history: Sequence[EpochRecord]) -> Optional[Summary]:
  """:class:`Summary` of an epoch history (None for an empty one)."""
  if not history:
    return None
  phase = ("finetune" if any(h.phase == "finetune" for h in history)
           else "pretrain")
  epochs = [h for h in history if h.phase == phase]
  final = {k: _value(epochs[-1], f"test_{k}") for k in METRICS}
  final["epoch"] = epochs[-1].epoch
  best = {}
  for k in METRICS:
    # Over the defined values: NDCG is NaN when no user has two test ratings.
    values = np.array([_value(h, f"test_{k}") for h in epochs], float)
    if np.all(np.isnan(values)):
      best[k], best[f"{k}_epoch"] = None, None
      continue
    i = int(np.nanargmax(values) if HIGHER_IS_BETTER[k] else
            np.nanargmin(values))
    best[k] = float(values[i])
    best[f"{k}_epoch"] = epochs[i].epoch
  selected = None
  i = selected_index(history)
  if i is not None:
    # Among the epochs of both phases: a fine-tuning that ends worse than
    # pre-training on validation keeps the pre-trained model.
    chosen = history[i]
    selected = {k: _value(chosen, f"test_{k}") for k in METRICS}
    selected.update(phase=chosen.phase, epoch=chosen.epoch,
                    valid_rmse=_value(chosen, "valid_rmse"))
  return Summary(phase, final, best, selected)


def diagnose(summary: Optional[Summary], history: Sequence[EpochRecord],
             means: dict, scale: RatingScale) -> list[str]:
  """What a user must know about a run (one model): a collapse, a
  fine-tuning that did not help, a model no better than a mean predictor.

  Args:
    summary: :func:`summarise` of ``history``.
    history: the epoch records.
    means: :func:`glocal_jax.evaluation.mean_predictor_rmse` of the data.
    scale: the data's rating scale.

  Returns:
    one sentence per finding (empty for a healthy run, or one with nothing
    evaluated).
  """
  found = []
  if not history or summary is None:
    return found
  selected = summary.selected
  checked = {("final", history[-1].phase, history[-1].epoch)}
  if selected:
    checked.add(("selected", selected["phase"], selected["epoch"]))
  for what, phase, epoch in sorted(checked):
    entry = next(h for h in history if (h.phase, h.epoch) == (phase, epoch))
    # On the test ratings, else the validation ones (a run on every
    # rating), else the training ones (neither split has a rating:
    # glocal_jax.evaluation.split_metrics measures them then).
    spread = next((s for s in (_metric(entry, f"{split}_spread")
                               for split in ("test", "valid", "train"))
                   if s is not None), None)
    if spread is not None and spread < COLLAPSE_SPREAD * (
        scale.high - scale.low):
      found.append(
          f"the {what} model ({phase} epoch {epoch}) has collapsed: its "
          f"predictions vary by {spread:.2g} across a user's items, i.e. it "
          "predicts one value per user and ranks every user's items alike "
          "(try a smaller dot_scale or lambda_s, or --pretrain_only).")
  if selected and selected["phase"] == "pretrain" and (
      summary.phase == "finetune"):
    tuned = [_metric(h, "valid_rmse") for h in history
             if h.phase == "finetune"]
    tuned = min((v for v in tuned if v is not None), default=float("nan"))
    found.append(
        f"fine-tuning never beat pre-training on validation (best "
        f"fine-tuning validation RMSE {tuned:.4f}, pre-training epoch "
        f"{selected['epoch']} {selected['valid_rmse']:.4f}): the pre-trained "
        "model is selected.")
  split, value = (("valid", selected["valid_rmse"]) if selected else
                  ("test", _metric(history[-1], "test_rmse")))
  if split in means and value is not None:
    by, best = min(means[split].items(), key=lambda kv: kv[1])
    if value >= best:
      what = "selected" if selected else "final"
      found.append(
          f"the {what} model's {split} RMSE {value:.4f} is no better than "
          f"the {by}-mean predictor's {best:.4f} on the same ratings: the "
          "model has learnt nothing a mean does not know (its "
          "hyper-parameters need tuning on a validation split).")
  return found
