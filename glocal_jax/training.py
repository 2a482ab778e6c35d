"""GLocal-K's training schedule: pre-training, then fine-tuning
(docs/model.md, Optimisation).

Each phase is a sequence of epochs; an epoch is one fresh L-BFGS-B run (see
:mod:`glocal_jax.optim`). :func:`train` runs the schedule, calls a callback
after every epoch (for evaluation, logging, checkpoints; returning True
stops), and can start from any (phase, epoch) to resume a run.

:func:`train` works on the rating matrix as the model sees it
(:func:`glocal_jax.matrix.prepare`: transposed for a user-based config), on
the model's own scale. A data set's rating scale, its raw ids, the
cold-start fallback and the selection of an epoch on validation are
:func:`glocal_jax.fit`'s.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glocal_jax import model
from glocal_jax.config import GLocalKConfig
from glocal_jax.epochs import CompiledEpoch
from glocal_jax.epochs import make_epoch_fns
from glocal_jax.matrix import PHASES
from glocal_jax.matrix import check_orientation
from glocal_jax.matrix import is_stacked
from glocal_jax.matrix import model_cells
from glocal_jax.matrix import prepare
from glocal_jax.optim import EpochFn
from glocal_jax.optim import EpochStart
from glocal_jax.ratings import Ratings
from glocal_jax.representations import TrainingData


class NonFiniteError(FloatingPointError):
  """Training produced a non-finite loss or parameter."""


@dataclasses.dataclass
class EpochRecord:
  """One epoch of training.

  Attributes:
    phase: ``"pretrain"`` or ``"finetune"``.
    epoch: 1-based epoch number within the phase.
    loss: training loss after the epoch (a list, one per seed, when seeds
      are trained together).
    evaluations: loss-and-gradient evaluations in the epoch (ditto).
    iterations: L-BFGS-B iterations in the epoch (ditto).
    seconds: wall time of the epoch's optimisation, compilation excluded.
    compile_seconds: time this epoch waited for its epoch function to
      compile (0 once compiled for these shapes, or when it was compiled
      ahead, while earlier epochs ran, by the time it was needed).
    step_scale: the epoch's last curvature scale
      (:attr:`glocal_jax.optim.EpochStats.step_scale`, ditto), which the
      next epoch of the phase starts from; a checkpoint keeps it, so that a
      resumed run steps as an uninterrupted one.
    metrics: the epoch's evaluation, e.g. ``{"valid_rmse": ...}``
      (:func:`glocal_jax.fit` fills it before its callback sees the record;
      a :func:`train` callback may set it).
    evaluation_seconds: wall time of that evaluation.
    next_start: the :class:`~glocal_jax.optim.EpochStart` of the phase's
      next epoch (not in :meth:`to_dict`); ``train(..., epoch_start=)``
      takes it back.
  """
  phase: str
  epoch: int
  loss: float | list[float]
  evaluations: int | list[int]
  iterations: int | list[int]
  seconds: float
  compile_seconds: float = 0.0
  step_scale: float | list[float] = 0.0
  metrics: dict = dataclasses.field(default_factory=dict)
  evaluation_seconds: float = 0.0
  # Where the next epoch of the phase starts (the loss and gradient at the
  # returned parameters): a checkpoint that keeps it resumes exactly.
  next_start: Optional[EpochStart] = dataclasses.field(
      default=None, repr=False, compare=False)

  def to_dict(self) -> dict:
    """The JSON-able fields (all but ``next_start``)."""
    return {f.name: (dict(getattr(self, f.name)) if f.name == "metrics"
                     else getattr(self, f.name))
            for f in dataclasses.fields(self) if f.name != "next_start"}

  @classmethod
  def from_dict(cls, record: dict) -> "EpochRecord":
    """The record of :meth:`to_dict` (e.g. read back from a checkpoint);
    keys it does not know are ignored."""
    names = {f.name for f in dataclasses.fields(cls)} - {"next_start"}
    return cls(**{k: v for k, v in record.items() if k in names})


# ``callback(record, params) -> stop``: True stops training after the epoch.
Callback = Callable[[EpochRecord, model.Params], Optional[bool]]


# model.init_params as one compiled program instead of an eager one per
# random draw, compiled without LLVM optimisation: it runs once, and its PRNG
# hashing is slow to compile optimised.
_init_params = jax.jit(model.init_params, static_argnums=tuple(range(1, 8)),
                       compiler_options={"xla_backend_optimization_level": 0})


def initial_params(config: GLocalKConfig, key: jax.Array,
                   shape: tuple[int, int]) -> model.Params:
  """The parameters of ``config``'s model of an ``(n_items, n_users)``
  matrix (:func:`glocal_jax.model.init_params` with the config's sizes, for
  its orientation: a user-based model's first layer takes the items); a
  stack of keys ``(s, 2)`` gives ``s`` initialisations stacked along a
  leading axis."""
  rows, cols = model_cells(config.orientation, *shape)
  init = lambda k: _init_params(k, rows, cols, config.hidden, config.n_dim,
                                config.kernel_size, config.conv_layers,
                                config.local_kernel is not False)
  key = jnp.asarray(key)
  return jax.vmap(init)(key) if key.ndim == 2 else init(key)


def all_finite(tree: Any) -> bool:
  """True when every leaf of ``tree`` is finite (one compiled reduction)."""
  return bool(_all_finite(tree))


@jax.jit
def _all_finite(tree):
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x))
                            for x in jax.tree.leaves(tree)]))


def schedule(config: GLocalKConfig, start: tuple[str, int] = ("pretrain", 0)
             ) -> list[tuple[str, int]]:
  """``(phase, epoch)`` of every epoch after ``start``, in order (epochs
  count from 1 within a phase)."""
  if start[0] not in PHASES:
    raise ValueError(f"start phase must be one of {PHASES}, got {start[0]!r}.")
  out = []
  for phase in PHASES[PHASES.index(start[0]):]:
    first = start[1] + 1 if phase == start[0] else 1
    out += [(phase, e) for e in range(first,
                                      getattr(config, f"{phase}_epochs") + 1)]
  return out


@dataclasses.dataclass
class TrainResult:
  """Parameters after the last epoch run, and the per-epoch history."""
  params: model.Params
  history: list[EpochRecord]


def train(config: GLocalKConfig, data: Ratings | TrainingData,
          key: Optional[jax.Array] = None, *,
          params: Optional[model.Params] = None,
          start: tuple[str, int] = ("pretrain", 0),
          callback: Optional[Callback] = None,
          epoch_fns: Optional[dict[str, EpochFn]] = None,
          max_epochs: Optional[int] = None,
          step_scale: Any = None,
          epoch_start: Optional[EpochStart] = None,
          hyper: Optional[dict[str, jax.Array]] = None) -> TrainResult:
  """Pre-trains then fine-tunes GLocal-K on one rating matrix.

  Epochs of :class:`~glocal_jax.epochs.CompiledEpoch` (as
  :func:`~glocal_jax.epochs.make_epoch_fns` makes them) compile before they
  run; once the first has compiled, those of the later phases compile on a
  background thread while the first phase runs.

  Args:
    config: hyper-parameters and schedule.
    data: training ratings, items x users on the model's scale (prepared
      here, for ``config``'s orientation), or the :class:`TrainingData` of
      :func:`prepare` with this config (to prepare once for several runs).
    key: PRNG key for the initialisation (ignored when ``params`` is given);
      a stack of keys ``(s, 2)`` initialises ``s`` seeds stacked along a
      leading axis, to train with ``make_epoch_fns(config, batched=True)``.
    params: parameters to start from (e.g. a checkpoint).
    start: ``(phase, epochs_done)`` -- where ``params`` stand in the
      schedule; the default starts from scratch.
    callback: ``callback(record, params) -> bool | None`` after every
      epoch (it may set ``record.metrics``); returning True stops training
      after that epoch (e.g. early stopping).
    epoch_fns: optional ``{"pretrain": fn, "finetune": fn}`` to reuse
      compiled epochs across calls (see :func:`make_epoch_fns`).
    max_epochs: stop after this many epochs in this call (continue later
      with ``params`` and ``start``).
    step_scale: when ``start`` is in the middle of a phase, the
      ``step_scale`` of its last :class:`EpochRecord` (per seed), for the
      next epoch's first step (``config.first_step``); None: unknown, the
      first step has unit length.
    epoch_start: when ``start`` is in the middle of a phase, the
      :attr:`EpochRecord.next_start` of its last epoch (e.g. from a
      checkpoint): the next epoch then starts exactly as it would have in
      an uninterrupted run (``step_scale`` alone gives the same first step
      but evaluates the loss and gradient afresh, which can differ in the
      last bits from those of the line search). Supersedes ``step_scale``.
    hyper: the scalar hyper-parameters as arrays
      (:func:`~glocal_jax.epochs.hyper_of`), for epochs made with
      ``make_epoch_fns(..., hyper_axis=True)``: one entry per stacked
      model, each trained with its own; ``config``'s values of
      :data:`~glocal_jax.epochs.HYPER_FIELDS` are then unused.

  Returns:
    :class:`TrainResult`.

  Raises:
    NonFiniteError: an epoch ended with a non-finite loss or parameter; the
      message names the phase and epoch, and the callback is not called.
    ValueError: ``data`` was prepared for another orientation.
    TypeError: the callback returned something other than a bool or None.

  Examples:
    >>> import jax, numpy as np
    >>> import glocal_jax as gj
    >>> rng = np.random.default_rng(0)
    >>> r = rng.integers(1, 6, (30, 20)) * (rng.random((30, 20)) < 0.3)
    >>> config = gj.GLocalKConfig(hidden=(8,), n_dim=2, pretrain_epochs=2,
    ...                           finetune_epochs=1, pretrain_maxiter=3,
    ...                           finetune_maxiter=3)
    >>> result = gj.train(config, gj.from_dense(r), jax.random.PRNGKey(0))
    >>> [(h.phase, h.epoch) for h in result.history]
    [('pretrain', 1), ('pretrain', 2), ('finetune', 1)]
    >>> result.history[1].loss < result.history[0].loss
    True
    >>> stop_early = lambda record, params: record.epoch == 1
    >>> len(gj.train(config, gj.from_dense(r), jax.random.PRNGKey(0),
    ...              callback=stop_early).history)
    1
  """
  if isinstance(data, Ratings):
    copies = (jax.tree.leaves(params)[0].shape[0] if params is not None
              and is_stacked(params) else
              np.shape(key)[0] if key is not None and np.ndim(key) == 2
              else 1)
    data = prepare(config, data, copies)
  check_orientation(config, data)
  if params is None:
    if key is None:
      raise ValueError("train needs a PRNG key or initial params.")
    params = initial_params(config, key,
                            model_cells(config.orientation, *data.shape))
  # Stacked parameters (a stack of keys) need batched epochs.
  epoch_fns = epoch_fns or make_epoch_fns(config, batched=is_stacked(params))
  seeds = (params["autoencoder"][-1]["b"].shape[:1] if is_stacked(params)
           else ())
  history = []
  given = data if hyper is None else (data, hyper)  # what the epochs take
  known = None  # (phase, EpochStart) after an epoch: its end is the next start
  planned = schedule(config, start)[:max_epochs]
  later = [p for p in dict.fromkeys(p for p, _ in planned[1:])
           if p != planned[0][0] and isinstance(epoch_fns[p], CompiledEpoch)]
  ahead = concurrent.futures.ThreadPoolExecutor(1, "glocal_jax-compile")
  try:
    for phase, epoch in planned:
      fn = epoch_fns[phase]
      tree = phase_tree(phase, params)
      if known is None and phase == start[0] and start[1] > 0:
        begin = (epoch_start if epoch_start is not None else
                 EpochStart.unknown(np.zeros(seeds), tree, step_scale))
      else:  # the previous epoch's end, in the same phase
        begin = (known[1] if known is not None and known[0] == phase else
                 EpochStart.unknown(np.zeros(seeds), tree))
      compile_seconds = fn.compile(tree, given, begin) if isinstance(
          fn, CompiledEpoch) else 0.0
      # Once the first epoch is compiled, the later phases' epochs compile
      # on a background thread while the first phase runs (docs/optimizer.md).
      if not history:
        for later_phase in later:
          later_tree = phase_tree(later_phase, params)
          epoch_fns[later_phase].compile_ahead(
              ahead, later_tree, given,
              EpochStart.unknown(np.zeros(seeds), later_tree))
      if isinstance(fn, CompiledEpoch):  # placed once, not at every call
        tree, given, begin = fn.conform(tree, given, begin)
      tic = time.perf_counter()
      new_tree, stats = fn(tree, given, begin)
      new_params = ({**params, "autoencoder": new_tree}
                    if phase == "pretrain" else new_tree)
      loss = np.asarray(stats.loss)
      _check_finite(phase, epoch, loss, new_params)
      params = new_params
      known = (phase, EpochStart.known(stats))
      record = EpochRecord(phase, epoch, loss.tolist(),
                           np.asarray(stats.evaluations).tolist(),
                           np.asarray(stats.iterations).tolist(),
                           time.perf_counter() - tic, compile_seconds,
                           np.asarray(stats.step_scale).tolist(),
                           next_start=known[1])
      stop = None if callback is None else callback(record, params)
      history.append(record)
      if stop is not None and not isinstance(stop, (bool, np.bool_)):
        raise TypeError(
            f"a training callback returns True (stop), False or None, got "
            f"{type(stop).__name__}; to attach metrics to the epoch, set "
            "record.metrics in the callback.")
      if stop:
        break
  finally:
    ahead.shutdown(wait=False, cancel_futures=True)
  return TrainResult(params, history)


def _check_finite(phase: str, epoch: int, loss: np.ndarray,
                  params: model.Params) -> None:
  """Raises :class:`NonFiniteError` unless the epoch's loss and parameters
  are all finite."""
  if not (np.all(np.isfinite(loss)) and all_finite(params)):
    raise NonFiniteError(
        f"{phase} epoch {epoch}: the loss ({loss}) or a parameter became "
        "non-finite; lower the regularisers' scale or check the data.")


def phase_tree(phase: str, params: model.Params) -> Any:
  """The parameters that ``phase``'s epochs optimise."""
  return params["autoencoder"] if phase == "pretrain" else params
