"""Honest tuning: hyper-parameters chosen on validation, the test set unread.

:func:`search` trains every configuration of a grid on the training ratings
of a :class:`~glocal_jax.data.RatingData` and scores it on its validation
split (carved from the training ratings,
:func:`glocal_jax.data.split_validation`); the data's test ratings are not
passed on, so nothing in the search can read them. Each configuration's epoch counts come from its own validation
curve: the epoch with the lowest validation RMSE, in either phase
(:func:`glocal_jax.diagnosis.summarise`), so ``pretrain_epochs`` and
``finetune_epochs`` are chosen for free. :func:`chosen_config` turns the
winner into a config that trains exactly to that epoch.

Configurations that differ only in their scalar hyper-parameters
(``lambda_2``, ``lambda_s``, ``dot_scale``) train as one compiled program
over a configuration axis (:func:`glocal_jax.runs.fit_configs`,
``batching="map"`` or ``"vmap"``); the shape-changing ones (hidden sizes,
kernel size, orientation) by a loop. ``batching="loop"`` trains every
configuration by its own :func:`glocal_jax.fit`, compiling its own
epochs. The default is the one measured fastest on the CPU
(``experiments/tune.py --batching``, RESULTS.md).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Callable, Mapping, Optional, Sequence

import jax

from glocal_jax import diagnosis
from glocal_jax import epochs
from glocal_jax import fitting
from glocal_jax import runs
from glocal_jax.config import GLocalKConfig
from glocal_jax.data import RatingData

# The default search: factors of the base config's value. Both searches of
# results/tune_{flixster,yahoo_music}_cpu.json chose the least-regularised
# corner of their grid (lambda_2 x0.5 .. x4, lambda_s x0.5 .. x2 around
# douban's preset), now their presets, so the factors reach further below
# the preset than above. The user-based autoencoder is not searched by
# default: in the 40-configuration searches of
# results/tune_{ml-100k,flixster}_cpu.json its best validation RMSE was 0.03
# worse than the item-based one's (0.941 against 0.910 and 0.932 against
# 0.903), and it doubled the search's cost.
DEFAULT_FACTORS: dict[str, tuple[float, ...]] = {
    "lambda_2": (0.25, 0.5, 1.0, 2.0),
    "lambda_s": (0.25, 0.5, 1.0),
}
BATCHING: tuple[str, ...] = ("map", "vmap", "loop")


def default_space(base: GLocalKConfig) -> dict[str, list]:
  """:data:`DEFAULT_FACTORS` times ``base``'s values: 12 configurations
  around the preset (``lambda_2`` from a quarter to twice, ``lambda_s``
  from a quarter to once), one compiled program (:func:`groups`)."""
  return {name: [getattr(base, name) * f for f in factors]
          for name, factors in DEFAULT_FACTORS.items()}


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


def groups(configs: Sequence[GLocalKConfig]) -> list[list[int]]:
  """Indices of ``configs`` grouped by everything but the scalar
  hyper-parameters (:data:`glocal_jax.epochs.HYPER_FIELDS`), in order of
  first appearance: each group can share one compiled program."""
  keyed = {}
  for i, config in enumerate(configs):
    key = tuple((k, str(v)) for k, v in config.to_dict().items()
                if k not in epochs.HYPER_FIELDS)
    keyed.setdefault(key, []).append(i)
  return list(keyed.values())


def search(configs: Sequence[GLocalKConfig], data: RatingData, seed: int = 0,
           *, batching: str = "map",
           mesh: Optional[jax.sharding.Mesh] = None,
           log: Callable[[str], None] = runs.say) -> dict:
  """Trains each of ``configs`` and scores it on ``data.valid``.

  Args:
    configs: the configurations (e.g. :func:`grid`).
    data: ratings with a validation split; its ``test`` is never read.
    seed: the parameter initialisation of every run.
    batching: ``"map"`` or ``"vmap"``: each group of :func:`groups` as one
      compiled program (:func:`glocal_jax.runs.fit_configs`);
      ``"loop"``: one :func:`glocal_jax.fit` per configuration.
    mesh: with ``batching="map"``, spread each group's configurations over
      this mesh's devices (axis ``"seeds"``, e.g.
      ``sharding.device_mesh(n, sharding.SEEDS)``; the devices may belong
      to several processes), each device mapping over its share.
    log: where the progress lines go.

  Returns:
    JSON-able ``{"configurations": [...], "chosen": {...}, "seconds",
    "batching"}``: for each configuration its ``config``, ``valid_rmse`` (of
    its selected epoch), ``phase``, ``epoch``, ``warnings`` and ``seconds``
    (of its group, when batched); ``chosen`` is the configuration of least
    validation RMSE (the first on ties) with ``config`` cut at its epoch
    (:func:`chosen_config`).

  Raises:
    ValueError: ``data`` has no validation split, no configurations, or an
      unknown ``batching``.
  """
  if data.valid is None:
    raise ValueError("tuning needs a validation split of the training "
                     "ratings (glocal_jax.data.split_validation).")
  if not configs:
    raise ValueError("no configurations to search.")
  if batching not in BATCHING:
    raise ValueError(f"batching must be one of {BATCHING}, got "
                     f"{batching!r}.")
  if mesh is not None and batching != "map":
    raise ValueError("configurations spread over a mesh's devices run "
                     f"one after the other on each (batching='map'), not "
                     f"{batching!r}.")
  # The validation ratings stand in for the test set: the search never
  # holds the real one.
  unseen = dataclasses.replace(data, test=data.valid)
  rows = [None] * len(configs)
  tic = time.perf_counter()
  batches = ([[i] for i in range(len(configs))] if batching == "loop"
             else groups(configs))
  for batch in batches:
    members = [configs[i] for i in batch]
    start = time.perf_counter()
    if len(batch) == 1:
      model = fitting.fit(members[0], unseen, jax.random.PRNGKey(seed))
      found = [(diagnosis.summarise(model.history), model.warnings)]
    else:
      result = runs.fit_configs(
          members, unseen, seed, log=lambda _: None, mesh=mesh,
          seed_batching=batching if mesh is None else "devices")
      found = [(run.summary, run.warnings) for run in result.runs]
    seconds = time.perf_counter() - start
    for i, (summary, warnings) in zip(batch, found, strict=True):
      selected = summary.selected
      rows[i] = {"config": configs[i].to_dict(),
                 "valid_rmse": selected["valid_rmse"],
                 "phase": selected["phase"], "epoch": selected["epoch"],
                 "warnings": warnings, "seconds": round(seconds, 1),
                 "batch": len(batch)}
      log(f"configuration {i + 1}/{len(configs)}: validation RMSE "
          f"{selected['valid_rmse']:.4f} at {selected['phase']} epoch "
          f"{selected['epoch']} ({seconds:.0f}s for {len(batch)}) "
          f"{_differences(configs[0], configs[i])}")
  best = min(range(len(rows)), key=lambda i: rows[i]["valid_rmse"])
  chosen = chosen_config(configs[best], rows[best]["phase"],
                         rows[best]["epoch"])
  return {"configurations": rows,
          "chosen": {"index": best, "config": chosen.to_dict(),
                     "valid_rmse": rows[best]["valid_rmse"]},
          "batching": batching, "seconds": time.perf_counter() - tic}


def _differences(base: GLocalKConfig, config: GLocalKConfig) -> str:
  """The fields of ``config`` that differ from ``base``, as ``k=v``."""
  return " ".join(f"{f.name}={getattr(config, f.name)}"
                  for f in dataclasses.fields(config)
                  if getattr(config, f.name) != getattr(base, f.name)) or (
                      "(the first)")
