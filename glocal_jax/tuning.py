"""Honest tuning: hyper-parameters chosen on validation, the test set unread.

:func:`search` trains every configuration of a grid on the training ratings
of a :class:`~glocal_jax.data.RatingData` and scores it on its validation
split (carved from the training ratings,
:func:`glocal_jax.data.split_validation`); the data's test ratings are not
passed on, so nothing in the search can read them. Each configuration's epoch counts come from its own validation
curve: the epoch with the lowest validation RMSE, in either phase
(:func:`glocal_jax.experiment.summarise`), so ``pretrain_epochs`` and
``finetune_epochs`` are chosen for free. :func:`chosen_config` turns the
winner into a config that trains exactly to that epoch.

The grid is searched by a loop of :func:`glocal_jax.experiment.fit` calls,
each compiling its own epochs (the scalar hyper-parameters are constants
of the compiled loss).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Callable, Mapping, Sequence

from glocal_jax import experiment
from glocal_jax.config import GLocalKConfig
from glocal_jax.data import RatingData

# The default search: factors of the base config's value, and choices.
DEFAULT_FACTORS: dict[str, tuple[float, ...]] = {
    "lambda_2": (0.5, 1.0, 2.0, 4.0),
    "lambda_s": (0.5, 1.0, 2.0),
}
DEFAULT_CHOICES: dict[str, tuple] = {"orientation": ("items", "users")}


def default_space(base: GLocalKConfig) -> dict[str, list]:
  """:data:`DEFAULT_FACTORS` times ``base``'s values and
  :data:`DEFAULT_CHOICES`: 24 configurations around the preset
  (``lambda_2`` from half to four times, ``lambda_s`` from half to twice,
  the item- and the user-based autoencoder)."""
  space = {name: [getattr(base, name) * f for f in factors]
           for name, factors in DEFAULT_FACTORS.items()}
  return {**space, **{k: list(v) for k, v in DEFAULT_CHOICES.items()}}


def grid(base: GLocalKConfig, space: Mapping[str, Sequence]
         ) -> list[GLocalKConfig]:
  """Every combination of ``space``'s values applied to ``base``, in the
  order of ``itertools.product`` over ``space``'s keys.

  Raises:
    ValueError: a name that is not a config field, or an empty list.
  """
  fields = {f.name for f in dataclasses.fields(GLocalKConfig)}
  for name, values in space.items():
    if name not in fields:
      raise ValueError(f"{name!r} is not a hyper-parameter; known: "
                       f"{sorted(fields)}.")
    if not values:
      raise ValueError(f"no values to search for {name!r}.")
  names = list(space)
  return [base.replace(**dict(zip(names, values)))
          for values in itertools.product(*(space[n] for n in names))]


def chosen_config(config: GLocalKConfig, phase: str, epoch: int
                  ) -> GLocalKConfig:
  """``config`` with the schedule cut at ``(phase, epoch)``: a run of it
  ends at that epoch (pre-training only when ``phase`` is ``"pretrain"``)."""
  if phase == "pretrain":
    return config.replace(pretrain_epochs=epoch, finetune_epochs=0)
  return config.replace(finetune_epochs=epoch)


def search(configs: Sequence[GLocalKConfig], data: RatingData, seed: int = 0,
           *, log: Callable[[str], None] = print) -> dict:
  """Trains each of ``configs`` and scores it on ``data.valid``.

  Args:
    configs: the configurations (e.g. :func:`grid`).
    data: ratings with a validation split; its ``test`` is never read.
    seed: the parameter initialisation of every run.
    log: where the progress lines go.

  Returns:
    JSON-able ``{"configurations": [...], "chosen": {...}, "seconds"}``:
    for each configuration its ``config``, ``valid_rmse`` (of its selected
    epoch), ``phase``, ``epoch``, ``warnings`` and ``seconds``; ``chosen``
    is the configuration of least validation RMSE (the first on ties) with
    ``config`` cut at its epoch (:func:`chosen_config`).

  Raises:
    ValueError: ``data`` has no validation split, or no configurations.
  """
  if data.valid is None:
    raise ValueError("tuning needs a validation split of the training "
                     "ratings (glocal_jax.data.split_validation).")
  if not configs:
    raise ValueError("no configurations to search.")
  # The validation ratings stand in for the test set: the search never
  # holds the real one.
  unseen = dataclasses.replace(data, test=data.valid)
  rows = []
  tic = time.perf_counter()
  for k, config in enumerate(configs):
    result = experiment.fit(config, unseen, seed, log=lambda _: None)
    selected = result["selected"]
    rows.append({"config": config.to_dict(),
                 "valid_rmse": selected["valid_rmse"],
                 "phase": selected["phase"], "epoch": selected["epoch"],
                 "warnings": result["warnings"],
                 "seconds": round(result["seconds"], 1)})
    log(f"configuration {k + 1}/{len(configs)}: validation RMSE "
        f"{selected['valid_rmse']:.4f} at {selected['phase']} epoch "
        f"{selected['epoch']} ({result['seconds']:.0f}s) "
        f"{_differences(configs[0], config)}")
  best = min(range(len(rows)), key=lambda i: rows[i]["valid_rmse"])
  chosen = chosen_config(configs[best], rows[best]["phase"],
                         rows[best]["epoch"])
  return {"configurations": rows,
          "chosen": {"index": best, "config": chosen.to_dict(),
                     "valid_rmse": rows[best]["valid_rmse"]},
          "seconds": time.perf_counter() - tic}


def _differences(base: GLocalKConfig, config: GLocalKConfig) -> str:
  """The fields of ``config`` that differ from ``base``, as ``k=v``."""
  return " ".join(f"{f.name}={getattr(config, f.name)}"
                  for f in dataclasses.fields(config)
                  if getattr(config, f.name) != getattr(base, f.name)) or (
                      "(the first)")
