"""GLocal-K's training schedule: pre-training, then fine-tuning
(docs/model.md, Optimisation).

Each phase is a sequence of epochs; an epoch is one fresh L-BFGS-B run (see
:mod:`glocal_jax.optim`). :func:`train` runs the schedule, calls a callback
after every epoch (for evaluation, logging, checkpoints), and can start from
any (phase, epoch) to resume a run.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import time
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from glocal_jax import model
from glocal_jax import representations
from glocal_jax import sharding
from glocal_jax.config import GLocalKConfig
from glocal_jax.optim import EpochFn
from glocal_jax.optim import EpochStart
from glocal_jax.optim import lbfgsb_epoch
from glocal_jax.plan import choose_plan
from glocal_jax.plan import device_memory_bytes
from glocal_jax.plan import estimate_memory_bytes
from glocal_jax.ratings import Ratings
from glocal_jax.representations import TrainingData

PHASES: tuple[str, ...] = ("pretrain", "finetune")


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
    metrics: whatever the callback returned (e.g. test RMSE).
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
  # Where the next epoch of the phase starts (the loss and gradient at the
  # returned parameters): a checkpoint that keeps it resumes exactly.
  next_start: Optional[EpochStart] = dataclasses.field(
      default=None, repr=False, compare=False)

  def to_dict(self) -> dict:
    """The JSON-able fields (all but ``next_start``)."""
    return {f.name: (dict(getattr(self, f.name)) if f.name == "metrics"
                     else getattr(self, f.name))
            for f in dataclasses.fields(self) if f.name != "next_start"}


Callback = Callable[[EpochRecord, model.Params], Optional[dict]]


# model.init_params as one compiled program instead of an eager one per
# random draw, compiled without LLVM optimisation: it runs once, and its PRNG
# hashing is slow to compile optimised.
_init_params = jax.jit(model.init_params, static_argnums=tuple(range(1, 8)),
                       compiler_options={"xla_backend_optimization_level": 0})


def init_params(config: GLocalKConfig, key: jax.Array, n_items: int,
                n_users: int) -> model.Params:
  """:func:`glocal_jax.model.init_params` with the sizes of ``config``."""
  return _init_params(key, n_items, n_users, config.hidden, config.n_dim,
                      config.kernel_size, config.conv_layers,
                      config.local_kernel is not False)


class ResourceError(ValueError):
  """The run cannot fit this data or this device."""


def prepare(config: GLocalKConfig, ratings: Ratings, copies: int = 1,
            mesh: Optional[jax.sharding.Mesh] = None,
            memory_bytes: Optional[int] = None) -> TrainingData:
  """The training ratings in the representation ``config`` asks for.

  Args:
    config: gives ``representation``, ``block_size``, ``chunk_size`` and
      the convolution (``kernel_size``, ``conv_layers``).
    ratings: training ratings.
    copies: models trained at once (vmapped seeds), for the memory rule.
    mesh: split the items over this mesh's devices
      (:func:`glocal_jax.sharding.device_mesh`); None: one device.
    memory_bytes: a device's memory, for the plan (``"auto"``) and the
      memory check; None reads it now
      (:func:`glocal_jax.plan.device_memory_bytes`: the host's *available*
      memory on a CPU, which changes from moment to moment; pass a value
      to make the choice reproducible).

  Raises:
    ValueError: ``ratings`` are malformed (:func:`glocal_jax.ratings.check`:
      unsorted, out of range, a cell twice).
    ResourceError: the global kernel is larger than the rating matrix, or
      the run's estimated memory (:func:`glocal_jax.representations.
      estimate_memory_bytes`) exceeds the device's, before anything large
      is allocated.
  """
  m, n = ratings.shape
  if config.kernel_size > min(m, n):
    raise ResourceError(
        f"kernel_size {config.kernel_size} is larger than the {m} x {n} "
        "rating matrix; use an odd kernel_size of at most "
        f"{min(m, n) - 1 + min(m, n) % 2}.")
  devices = 1 if mesh is None else mesh.size
  available = memory_bytes or device_memory_bytes()
  # The plan is chosen for one device's share of the items.
  plan = choose_plan(
      (-(-m // devices), n), -(-ratings.nnz // devices),
      kernel_size=config.kernel_size, conv_layers=config.conv_layers,
      representation=config.representation, copies=copies,
      block_size=config.block_size, chunk_size=config.chunk_size,
      memory_bytes=available)
  needed = estimate_memory_bytes(
      plan, ratings.shape, ratings.nnz, hidden=config.hidden,
      n_dim=config.n_dim, kernel_size=config.kernel_size,
      conv_layers=config.conv_layers, history_size=config.history_size,
      copies=copies, devices=devices)
  if needed > available:
    raise ResourceError(
        f"training needs about {needed / 2**30:.1f} GiB ({plan.name} "
        f"products, hidden {list(config.hidden)}, {copies} model(s), "
        f"L-BFGS history {config.history_size}) and the device has "
        f"{available / 2**30:.1f} GiB; use smaller hidden layers, fewer "
        "seeds at once, more devices, or representation 'blocked' or "
        "'sparse'.")
  if mesh is not None and mesh.size > 1:
    return sharding.prepare(ratings, plan, mesh,
                            kernel_size=config.kernel_size,
                            conv_layers=config.conv_layers)
  return representations.prepare(ratings, plan,
                                 kernel_size=config.kernel_size,
                                 conv_layers=config.conv_layers)


# The scalar hyper-parameters: a run can take them as traced arguments
# (``hyper``), so that configurations differing in them only share one
# compiled program (glocal_jax.experiment.fit_configs).
HYPER_FIELDS: tuple[str, ...] = ("lambda_2", "lambda_s", "dot_scale")


def hyper_of(configs: Sequence[GLocalKConfig]) -> dict[str, jax.Array]:
  """``{field: (len(configs),)}`` float32 of :data:`HYPER_FIELDS`."""
  return {f: jnp.asarray([getattr(c, f) for c in configs], jnp.float32)
          for f in HYPER_FIELDS}


def pretrain_loss_fn(config: GLocalKConfig, traced_hyper: bool = False
                     ) -> Callable[..., jax.Array]:
  """``loss(ae_params, data)`` of pre-training for ``config``; with
  ``traced_hyper``, ``data`` is ``(TrainingData, hyper)`` and the
  hyper-parameters come from ``hyper`` (:func:`hyper_of`, one entry each)
  instead of ``config``."""
  if traced_hyper:
    return lambda layers, data: representations.pretrain_loss(
        layers, data[0], data[1]["lambda_2"], data[1]["lambda_s"],
        config.local_kernel_fn)
  return functools.partial(representations.pretrain_loss,
                           lambda_2=config.lambda_2, lambda_s=config.lambda_s,
                           local_kernel=config.local_kernel_fn)


def finetune_loss_fn(config: GLocalKConfig, traced_hyper: bool = False
                     ) -> Callable[..., jax.Array]:
  """``loss(params, data)`` of fine-tuning for ``config`` (``traced_hyper``
  as in :func:`pretrain_loss_fn`)."""
  if traced_hyper:
    return lambda params, data: representations.finetune_loss(
        params, data[0], data[1]["lambda_2"], data[1]["lambda_s"],
        data[1]["dot_scale"], config.aggregation, config.local_kernel_fn)
  return functools.partial(
      representations.finetune_loss, lambda_2=config.lambda_2,
      lambda_s=config.lambda_s, dot_scale=config.dot_scale,
      aggregation=config.aggregation, local_kernel=config.local_kernel_fn)


def predict(config: GLocalKConfig, params: model.Params, data: TrainingData,
            items: Any, users: Any, phase: str) -> jax.Array:
  """``(k,)`` unclipped predictions at ``(items, users)`` after ``phase``.

  After pre-training the model is the local-kernel AE alone (``AE(R)``);
  after fine-tuning it is GLocal-K (``AE(R_hat)``). Compiled once per
  shape; parameters stacked over seeds give ``(seeds, k)``.

  Raises:
    ValueError: ``phase`` is not one of :data:`PHASES`, or (for concrete
      indices) an item or user index is outside the matrix.
  """
  if phase not in PHASES:
    raise ValueError(f"phase must be one of {PHASES}, got {phase!r}.")
  for name, idx, size in (("item", items, data.shape[0]),
                          ("user", users, data.shape[1])):
    if not isinstance(idx, jax.core.Tracer):
      idx = np.asarray(idx)
      bad = np.flatnonzero((idx < 0) | (idx >= size))
      if bad.size:
        raise ValueError(f"{name} index {idx[bad[0]]} is outside the "
                         f"{data.shape[0]} x {data.shape[1]} matrix.")
  return _predict(params, data, jnp.asarray(items), jnp.asarray(users),
                  phase == "finetune", config.dot_scale, config.aggregation,
                  config.local_kernel_fn, is_stacked(params))


def is_stacked(params: model.Params) -> bool:
  """Whether ``params`` are stacked over seeds along a leading axis."""
  return params["autoencoder"][-1]["b"].ndim == 2


@functools.partial(jax.jit, static_argnums=(4, 6, 7, 8))
def _predict(params, data, items, users, finetuned, dot_scale, aggregation,
             local_kernel, stacked):
  fn = lambda p: representations.predict(p, data, items, users, finetuned,
                                         dot_scale, aggregation, local_kernel)
  return jax.vmap(fn)(params) if stacked else fn(params)


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

  Epochs of :class:`CompiledEpoch` (as :func:`make_epoch_fns` makes them)
  compile before they run; once the first has compiled, those of the later
  phases compile on a background thread while the first phase runs.

  Args:
    config: hyper-parameters and schedule.
    data: training ratings, or the :class:`TrainingData` of
      :func:`prepare` (to prepare once for several runs).
    key: PRNG key for the initialisation (ignored when ``params`` is given);
      a stack of keys ``(s, 2)`` initialises ``s`` seeds stacked along a
      leading axis, to train with ``make_epoch_fns(config, batched=True)``.
    params: parameters to start from (e.g. a checkpoint).
    start: ``(phase, epochs_done)`` -- where ``params`` stand in the
      schedule; the default starts from scratch.
    callback: ``callback(record, params) -> dict | None`` after every epoch;
      a returned dict is stored as ``record.metrics``.
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
    hyper: the scalar hyper-parameters as arrays (:func:`hyper_of`), for
      epochs made with ``make_epoch_fns(..., hyper_axis=True)``: one entry
      per stacked model, each trained with its own; ``config``'s values of
      :data:`HYPER_FIELDS` are then unused.

  Returns:
    :class:`TrainResult`.

  Raises:
    NonFiniteError: an epoch ended with a non-finite loss or parameter; the
      message names the phase and epoch, and the callback is not called.

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
  """
  if params is None:
    params = _initial_params(config, key, data.shape)
  if isinstance(data, Ratings):
    copies = params["autoencoder"][-1]["b"].shape[0] if is_stacked(
        params) else 1
    data = prepare(config, data, copies)
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
      if callback is not None:
        record.metrics = callback(record, params) or {}
      history.append(record)
  finally:
    ahead.shutdown(wait=False, cancel_futures=True)
  return TrainResult(params, history)


def _initial_params(config: GLocalKConfig, key: Optional[jax.Array],
                    shape: tuple[int, int]) -> model.Params:
  """:func:`init_params` of ``key``, or of each of a stack of keys."""
  if key is None:
    raise ValueError("train needs a PRNG key or initial params.")
  key = jnp.asarray(key)
  init = functools.partial(init_params, config, n_items=shape[0],
                           n_users=shape[1])
  return jax.vmap(init)(key) if key.ndim == 2 else init(key)


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


SEED_BATCHING: tuple[str, ...] = ("vmap", "map", "devices")


class CompiledEpoch:
  """A jitted epoch function, compiled once per argument shapes, ahead of
  its first call, so that compilation is timed apart from training.

  Calling it runs the compiled executable for the arguments' shapes
  (compiling first if needed); :meth:`compile` compiles without running and
  returns the seconds it took (0 when already compiled);
  :meth:`compile_ahead` compiles on another thread while this one works on.
  """

  def __init__(self, fn: Callable):
    self._fn = fn
    self._compiled = {}  # signature -> executable, or its Future

  @staticmethod
  def _signature(*args):
    leaves, treedef = jax.tree.flatten(args)
    return treedef, tuple(
        (np.shape(x), x.dtype if hasattr(x, "dtype") else np.result_type(x),
         getattr(x, "weak_type", False)) for x in leaves)

  def compile(self, *args) -> float:
    """Compiles for ``args``' shapes unless done; returns the seconds this
    call waited (for a :meth:`compile_ahead` still running, the rest)."""
    key = self._signature(*args)
    compiled = self._compiled.get(key)
    if compiled is not None and not isinstance(
        compiled, concurrent.futures.Future):
      return 0.0
    tic = time.perf_counter()
    self._compiled[key] = (self._fn.lower(*args).compile() if compiled is None
                           else compiled.result())
    return time.perf_counter() - tic

  def compile_ahead(self, executor: concurrent.futures.Executor,
                    *args) -> None:
    """Lowers for ``args``' shapes here and compiles on ``executor``, unless
    compiled already; a later call with such arguments waits for it."""
    key = self._signature(*args)
    if key not in self._compiled:
      self._compiled[key] = executor.submit(self._fn.lower(*args).compile)

  def conform(self, *args) -> tuple:
    """``args`` placed as the executable for their shapes takes them: each
    array whose sharding differs (e.g. on one device, where the epoch takes
    it replicated over a mesh) copied there; the others as they are."""
    self.compile(*args)
    expected = self._compiled[self._signature(*args)].input_shardings[0]

    def place(x, target):
      if (target is None or not isinstance(x, jax.Array)
          or x.sharding.is_equivalent_to(target, x.ndim)):
        return x
      return sharding.put_global(x, target)
    return jax.tree.map(place, args, expected)

  def __call__(self, *args):
    args = self.conform(*args)
    return self._compiled[self._signature(*args)](*args)


def make_epoch_fns(config: GLocalKConfig, batched: bool = False,
                   seed_batching: str = "map",
                   mesh: Optional[jax.sharding.Mesh] = None,
                   hyper_axis: bool = False, **options
                   ) -> dict[str, EpochFn]:
  """The pre-training and fine-tuning epochs of ``config``'s driver.

  Args:
    config: the run's configuration (driver, iterations, losses).
    batched: run the epochs over parameters stacked along a leading axis
      (several seeds as one compiled program; JAX drivers only).
    seed_batching: how a batched epoch runs its seeds: ``"map"`` (the
      default: ``lax.map``, one seed after the other inside the compiled
      program), ``"vmap"`` (one vectorised program; slower than ``"map"``
      on the CPU, docs/optimizer.md) or
      ``"devices"`` (the seeds spread over ``mesh``'s devices,
      :func:`glocal_jax.sharding.seeds_on_devices`).
    mesh: for ``"devices"``: a mesh with axis ``"seeds"``.
    hyper_axis: the epochs take ``(TrainingData, hyper)`` for the data, the
      scalar hyper-parameters traced (:func:`hyper_of`; ``train(...,
      hyper=)``): batched, each stacked model has its own (a configuration
      axis); unbatched, one compiled epoch serves any values.
    **options: passed to :func:`glocal_jax.optim.lbfgsb_epoch`, with
      ``first_step=config.first_step`` for the JAX drivers.

  Returns:
    ``{"pretrain": fn, "finetune": fn}``, each
    ``fn(params, data, start) -> (params, EpochStats)`` with ``start`` an
    :class:`glocal_jax.optim.EpochStart` (stacked ``value``, ``grad`` and
    ``step_scale``, one ``fresh`` flag, when batched).
  """
  if batched and config.optimizer == "scipy":
    raise ValueError("batched (vmapped) seeds need a JAX driver (optax or "
                     "jaxopt), not scipy.")
  if seed_batching not in SEED_BATCHING:
    raise ValueError(f"seed_batching must be one of {SEED_BATCHING}, got "
                     f"{seed_batching!r}.")
  if batched and seed_batching == "devices" and mesh is None:
    raise ValueError("seed_batching='devices' needs a mesh.")
  if hyper_axis and config.optimizer == "scipy":
    raise ValueError("hyper_axis needs a JAX driver (optax or jaxopt).")
  if config.optimizer != "scipy":
    options = {"first_step": config.first_step, **options}
  fns = {}
  for phase, loss_fn in (("pretrain", pretrain_loss_fn(config, hyper_axis)),
                         ("finetune", finetune_loss_fn(config, hyper_axis))):
    host = config.optimizer == "scipy"  # runs on the host, not traceable
    base = lbfgsb_epoch(config.optimizer, loss_fn,
                        getattr(config, f"{phase}_maxiter"),
                        config.history_size, jit=False, **options)
    one = lambda params, data, start, base=base: base(params, data,
                                                      start=start)
    if not batched:
      fn = one if host else jax.jit(one)
    elif seed_batching == "vmap":
      data_axes = (None, 0) if hyper_axis else None
      fn = jax.jit(jax.vmap(one, in_axes=(0, data_axes,
                                          EpochStart(0, 0, None, 0))))
    elif seed_batching == "devices":
      fn = sharding.seeds_on_devices(one, mesh, per_seed_data=hyper_axis)
    else:
      fn = jax.jit(functools.partial(sharding.map_seeds, one,
                                     per_seed_data=hyper_axis))
    fns[phase] = CompiledEpoch(fn) if hasattr(fn, "lower") else fn
  return fns
