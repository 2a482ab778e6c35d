"""The compiled L-BFGS epochs of GLocal-K's two phases.

:func:`make_epoch_fns` builds, for a config, the pre-training and
fine-tuning epoch functions of its driver (:mod:`glocal_jax.optim`), for
one model or for models stacked along a leading axis (seeds, or
configurations with their own scalar hyper-parameters), each wrapped in a
:class:`CompiledEpoch` that compiles ahead of its first call so that
compilation is timed apart from training (:func:`glocal_jax.train`).
"""

from __future__ import annotations

import concurrent.futures
import functools
import time
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from glocal_jax import representations
from glocal_jax import sharding
from glocal_jax.config import GLocalKConfig
from glocal_jax.optim import EpochFn
from glocal_jax.optim import EpochStart
from glocal_jax.optim import lbfgsb_epoch

# The scalar hyper-parameters: a run can take them as traced arguments
# (``hyper``), so that configurations differing in them only share one
# compiled program (glocal_jax.runs.fit_configs).
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
        data[1]["dot_scale"], config.aggregation, config.local_kernel_fn,
        config.pooling_fn)
  return functools.partial(
      representations.finetune_loss, lambda_2=config.lambda_2,
      lambda_s=config.lambda_s, dot_scale=config.dot_scale,
      aggregation=config.aggregation, local_kernel=config.local_kernel_fn,
      pooling=config.pooling_fn)



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
    if compiled is not None and compiled.cancelled():
      compiled = None  # its train call ended before the compilation began
    self._compiled[key] = (self._fn.lower(*args).compile() if compiled is None
                           else compiled.result())
    return time.perf_counter() - tic

  def compile_ahead(self, executor: concurrent.futures.Executor,
                    *args) -> None:
    """Lowers for ``args``' shapes here and compiles on ``executor``, unless
    compiled already; a later call with such arguments waits for it."""
    key = self._signature(*args)
    known = self._compiled.get(key)
    if known is None or (isinstance(known, concurrent.futures.Future)
                         and known.cancelled()):
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
