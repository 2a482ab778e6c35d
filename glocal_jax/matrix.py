"""The rating matrix as a config's model sees it: prepared for its
orientation and plan, and predicted at cells of the items x users matrix.

A user-based config (``orientation="users"``) trains the item-based model
of the transposed matrix: :func:`prepare` transposes the items x users
ratings for it, and :func:`predict` takes ``users`` and ``items`` indices
of the items x users matrix whatever the orientation (:func:`model_cells`
maps them). Both work on the model's own scale; a data set's rating scale,
raw ids and cold-start fallback are :func:`glocal_jax.fit`'s
(:mod:`glocal_jax.evaluation`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glocal_jax import model
from glocal_jax import ratings as rt
from glocal_jax import representations
from glocal_jax import sharding
from glocal_jax.config import GLocalKConfig
from glocal_jax.plan import choose_plan
from glocal_jax.plan import device_memory_bytes
from glocal_jax.plan import estimate_memory_bytes
from glocal_jax.ratings import Ratings
from glocal_jax.representations import TrainingData

PHASES: tuple[str, ...] = ("pretrain", "finetune")


class ResourceError(ValueError):
  """The run cannot fit this data or this device."""


def prepare(config: GLocalKConfig, ratings: Ratings, copies: int = 1,
            mesh: Optional[jax.sharding.Mesh] = None,
            memory_bytes: Optional[int] = None) -> TrainingData:
  """The training ratings as ``config``'s model sees them: transposed for a
  user-based model (``orientation="users"``), in the representation it asks
  for.

  Args:
    config: gives ``orientation``, ``representation``, ``block_size``,
      ``chunk_size`` and the convolution (``kernel_size``, ``conv_layers``).
    ratings: training ratings, items x users (on the model's scale).
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
  if config.orientation == "users":
    ratings = rt.transpose(ratings)
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
    data = sharding.build_on_mesh(ratings, plan, mesh,
                            kernel_size=config.kernel_size,
                            conv_layers=config.conv_layers)
  else:
    data = representations.build_on_device(ratings, plan,
                                           kernel_size=config.kernel_size,
                                           conv_layers=config.conv_layers)
  return dataclasses.replace(data, orientation=config.orientation)


def check_phase(phase: str) -> None:
  """Raises ValueError unless ``phase`` is one of :data:`PHASES`."""
  if phase not in PHASES:
    raise ValueError(f"phase must be one of {PHASES}, got {phase!r}.")


def check_orientation(config: GLocalKConfig, data: TrainingData) -> None:
  """Raises ValueError unless ``data`` was prepared for ``config``'s
  orientation (a user-based model trains on the transposed matrix)."""
  if data.orientation != config.orientation:
    raise ValueError(
        f"the data was prepared for orientation={data.orientation!r} and the "
        f"config has orientation={config.orientation!r}: prepare it with "
        "this config (glocal_jax.prepare), or train with glocal_jax.fit, "
        "which does it for you.")


def model_cells(orientation: str, items: Any, users: Any) -> tuple[Any, Any]:
  """``(rows, columns)`` of the model's matrix at ``(items, users)`` cells
  of the items x users matrix: the same for an item-based model, swapped
  for a user-based one."""
  return (users, items) if orientation == "users" else (items, users)


def predict(config: GLocalKConfig, params: model.Params, data: TrainingData,
            phase: str, *, users: Any, items: Any) -> jax.Array:
  """``(k,)`` unclipped predictions of ``users[i]`` for ``items[i]`` after
  ``phase``, on the model's scale.

  After pre-training the model is the local-kernel AE alone (``AE(R)``);
  after fine-tuning it is GLocal-K (``AE(R_hat)``). ``users`` and
  ``items`` index the columns and rows of the items x users matrix, for a
  user-based model too. Compiled once per shape and model functions (the
  config's local kernel, aggregation and pooling are part of the compiled
  program's key, so another function compiles another program); parameters
  stacked over seeds give ``(seeds, k)``. :class:`glocal_jax.TrainedModel`
  predicts in a data set's raw ids and rating scale.

  Raises:
    ValueError: ``phase`` is not one of :data:`PHASES`, ``data`` was
      prepared for another orientation, or (for concrete indices) an item
      or user index is outside the matrix.
  """
  check_phase(phase)
  check_orientation(config, data)
  m, n = model_cells(config.orientation, *data.shape)
  for name, idx, size in (("item", items, m), ("user", users, n)):
    if not isinstance(idx, jax.core.Tracer):
      idx = np.asarray(idx)
      if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"{name} indices must be integers, got "
                         f"{idx.dtype}.")
      bad = np.flatnonzero((idx < 0) | (idx >= size))
      if bad.size:
        raise ValueError(f"{name} index {idx.ravel()[bad[0]]} is outside "
                         f"the {m} x {n} matrix (items x users).")
  rows, cols = model_cells(config.orientation, jnp.asarray(items),
                           jnp.asarray(users))
  return _predict(params, data, rows, cols, phase == "finetune",
                  config.dot_scale, config.aggregation,
                  config.local_kernel_fn, config.pooling_fn,
                  is_stacked(params))


def is_stacked(params: model.Params) -> bool:
  """Whether ``params`` are stacked over seeds along a leading axis."""
  return params["autoencoder"][-1]["b"].ndim == 2


@functools.partial(jax.jit, static_argnums=(4, 6, 7, 8, 9))
def _predict(params, data, rows, cols, finetuned, dot_scale, aggregation,
             local_kernel, pooling, stacked):
  fn = lambda p: representations.predictions_at(
      p, data, rows, cols, finetuned, dot_scale, aggregation, local_kernel,
      pooling)
  return jax.vmap(fn)(params) if stacked else fn(params)
