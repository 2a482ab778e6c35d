"""A run's checkpoint: what it holds beyond the model (seed, data
fingerprint, time, where the next epoch starts), and resuming from it.

A run's checkpoint is a saved model (:func:`glocal_jax.trained.model_arrays`,
:func:`glocal_jax.trained.model_meta`: :func:`glocal_jax.load_model` reads
it) plus what continues the run exactly: the PRNG key, the seed, a
fingerprint of the training data, the seconds so far, and the loss and
gradient the last epoch ended at.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glocal_jax import checkpoint
from glocal_jax import diagnosis
from glocal_jax import optim
from glocal_jax import training
from glocal_jax.config import GLocalKConfig
from glocal_jax.data.container import RatingData
from glocal_jax.fitting import Resume
from glocal_jax.trained import SELECTED
from glocal_jax.trained import model_arrays
from glocal_jax.trained import model_meta
from glocal_jax.training import EpochRecord


def fingerprint(data: RatingData) -> dict:
  """What identifies the training data of a run: its name, shape, ratings
  and raw ids (:func:`glocal_jax.checkpoint.data_fingerprint`)."""
  host = data.train.to_host()
  return checkpoint.data_fingerprint(data.name, host.items, host.users,
                                     host.values, data.shape,
                                     data.item_ids, data.user_ids)


def start_arrays(start: Optional[optim.EpochStart]) -> dict:
  """The loss and gradient an epoch ended at (``next_value``,
  ``next_grad/<i>``), for a checkpoint to resume from exactly."""
  if start is None:
    return {}
  return {"next_value": np.asarray(start.value),
          **{f"next_grad/{i}": np.asarray(g)
             for i, g in enumerate(jax.tree.leaves(start.grad))}}


def start_from_arrays(arrays: dict, tree, step_scale
                      ) -> Optional[optim.EpochStart]:
  """The :class:`~glocal_jax.optim.EpochStart` that :func:`start_arrays`
  stored, shaped like ``tree`` (the phase's parameters); None when the
  checkpoint has none (older, or written at no epoch's end)."""
  if "next_value" not in arrays:
    return None
  leaves, treedef = jax.tree.flatten(tree)
  grads = [arrays.get(f"next_grad/{i}") for i in range(len(leaves))]
  if any(g is None or g.shape != np.shape(x)
         for g, x in zip(grads, leaves, strict=True)):
    return None
  value = np.asarray(arrays["next_value"], np.float32)
  scale = np.broadcast_to(np.asarray(
      0.0 if step_scale is None else step_scale, np.float32), value.shape)
  return optim.EpochStart(value, jax.tree.unflatten(
      treedef, [jnp.asarray(g) for g in grads]), np.False_, scale)


@dataclasses.dataclass
class RunCheckpoint:
  """A run's checkpoint, read back: where :func:`glocal_jax.fit` goes on.

  Attributes:
    resume: the :class:`~glocal_jax.fitting.Resume` of the run.
    key: its PRNG key.
    seconds: the wall time of the run so far.
    path: the file it was read from.
  """
  resume: Resume
  key: jax.Array
  seconds: float
  path: str

  @classmethod
  def load(cls, directory: str, config: GLocalKConfig, seed: int,
           data_print: dict, log: Callable[[str], None]
           ) -> Optional["RunCheckpoint"]:
    """The checkpoint in ``directory``, after checking it fits this run;
    None (and says so) when there is none.

    A checkpoint of a finished (or unfinished) run resumes with more
    epochs than it was written with: more of the phase it is in, or any
    number of a phase it has not started.

    Raises:
      ValueError: the checkpoint was written with another config or seed
        (the message names each field that differs), or on other data (the
        message names both), or every file is damaged.
    """
    if not checkpoint.exists(directory):
      log(f"No checkpoint in {directory}; starting from scratch.")
      return None
    ckpt = checkpoint.load(directory)
    for problem in ckpt.damaged:
      log(f"{problem}; resuming from {ckpt.path} instead.")
    _check_same_run(directory, ckpt.meta, config, seed, data_print)
    history = [EpochRecord.from_dict(h) for h in ckpt.meta["history"]]
    start = (ckpt.meta["phase"], ckpt.meta["epoch"])
    # The curvature scale the next epoch of the phase starts from, and
    # (checkpoints since it was kept) its loss and gradient.
    step_scale = history[-1].step_scale if history else None
    epoch_start = start_from_arrays(ckpt.arrays, training.phase_tree(
        start[0], ckpt.params), step_scale)
    selected_dir = os.path.join(directory, SELECTED)
    selected = (checkpoint.load(selected_dir).params
                if checkpoint.exists(selected_dir) else None)
    return cls(Resume(ckpt.params, start, history, epoch_start, step_scale,
                      selected), ckpt.key, ckpt.meta["seconds"], ckpt.path)


def _check_same_run(directory: str, meta: dict, config: GLocalKConfig,
                    seed: int, data_print: dict) -> None:
  """Raises ValueError unless the checkpoint's ``meta`` is of this run."""
  written_config = meta["config"]
  phase, epoch = meta["phase"], meta["epoch"]
  # A run can go on for more epochs: of the phase it is in, or of a phase
  # not started yet.
  extends = {"pretrain_epochs": phase == "pretrain"
                                and config.pretrain_epochs >= epoch,
             "finetune_epochs": phase == "pretrain"
                                or config.finetune_epochs >= epoch}
  defaults = GLocalKConfig().to_dict()  # fields newer than the checkpoint
  differ = [f"{k}: {written_config.get(k, defaults[k])!r} in the "
            f"checkpoint, {v!r} now"
            for k, v in config.to_dict().items()
            if written_config.get(k, defaults[k]) != (
                list(v) if isinstance(v, tuple) else v)
            and not extends.get(k)]
  if meta["seed"] != seed:
    differ.append(f"seed: {meta['seed']} in the checkpoint, {seed} now")
  if differ:
    raise ValueError(
        f"The checkpoint in {directory} was written with another "
        f"configuration ({'; '.join(differ)}); use the same flags or "
        "another folder.")
  written = meta.get("data")
  if written != data_print:
    describe = lambda d: ("unknown data (an older checkpoint)" if d is None
                          else f"{d['name']}, {d['shape'][0]} x "
                          f"{d['shape'][1]}, {d['ratings']} ratings, sha256 "
                          f"{d['sha256'][:12]}")
    raise ValueError(
        f"The checkpoint in {directory} was trained on "
        f"{describe(written)}, not on this run's {describe(data_print)}; "
        "use the same data or another folder.")


class Checkpointer:
  """Writes a run's checkpoint after each epoch, on a background thread
  (:class:`glocal_jax.checkpoint.Writer`), and, with a validation split,
  the checkpoint of the epoch of least validation RMSE so far in
  ``directory/selected`` (what :func:`glocal_jax.load_model` gives).

  Use as a context manager: leaving it waits for the last write.
  """

  def __init__(self, directory: str, config: GLocalKConfig, seed: int,
               data: RatingData, data_print: dict, means: dict,
               cold_fallback: bool, plan: dict, key: Any):
    self._directory = directory
    self._arrays = model_arrays(data)
    self._fixed = {"seed": seed, "data": data_print}
    self._model = dict(config=config, mean_predictors=means,
                       cold_fallback=cold_fallback, plan=plan,
                       name=data.name)
    self._key = key
    self._writer = checkpoint.Writer()

  def __enter__(self) -> "Checkpointer":
    self._writer.__enter__()
    return self

  def __exit__(self, *exc) -> None:
    self._writer.__exit__(*exc)

  def save(self, record: EpochRecord, params, history: list[EpochRecord],
           seconds: float) -> None:
    """The checkpoint after ``record``'s epoch (``history`` up to it)."""
    meta = {**model_meta(phase=record.phase, epoch=record.epoch,
                         history=history, **self._model),
            **self._fixed, "seconds": seconds}
    self._writer.save(self._directory, params, self._key, meta,
                      arrays={**self._arrays,
                              **start_arrays(record.next_start)})
    if diagnosis.selected_index(history) == len(history) - 1:
      # The honest protocol's model so far: what load_model gives.
      self._writer.save(os.path.join(self._directory, SELECTED), params,
                        self._key, meta, arrays=self._arrays)
