"""GLocal-K over several devices, with JAX's own SPMD machinery.

Two ways to use more than one device, neither with a communication layer of
its own:

* **Items across devices** (:func:`build_on_mesh`): the autoencoder's
  samples are
  the items, so the rating matrix is split into contiguous ranges of items,
  one per device (whole blocks of items for blocked products). Each device
  holds its items' ratings in the representation the plan chose, plus the
  ``conv_layers * (t // 2)`` halo rows above and below that its
  convolution reads; the losses run under ``jax.shard_map``
  (:mod:`glocal_jax.representations`): each device pools its own items, the
  global kernel's weighted sum and the loss are added across devices
  (``psum``), and the gradients of the replicated parameters are summed by
  the transpose of that ``psum``. Parameters and the L-BFGS state are
  replicated: per device, memory is the parameters and optimiser state plus
  ``1 / devices`` of the data.
* **Seeds across devices** (:func:`seeds_on_devices`): several
  independently seeded runs, each device running its share of them on the
  whole data.

Several processes (``jax.distributed``, e.g. one per host): every process
builds the same host arrays and places its own devices' slices
(:func:`put_global`), so the mesh may span devices this process cannot
address; ``experiments/train.py --coordinator_address=...`` starts them and
writes files from process 0 only (docs/scaling.md).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Optional

import jax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from glocal_jax import ratings as rt
from glocal_jax import sparse
from glocal_jax.optim import EpochStart
from glocal_jax.plan import Plan
from glocal_jax.ratings import Ratings
from glocal_jax.representations import ITEMS
from glocal_jax.representations import TrainingData
from glocal_jax.representations import build

SEEDS = "seeds"  # the mesh axis that seeds are spread over


def device_mesh(devices: Optional[int] = None, axis: str = ITEMS) -> Mesh:
  """A 1-D mesh over the first ``devices`` devices (default: all)."""
  available = jax.devices()
  count = len(available) if devices is None else devices
  if not 1 <= count <= len(available):
    raise ValueError(f"devices must be in [1, {len(available)}] (the "
                     f"devices JAX sees), got {devices}.")
  return Mesh(np.asarray(available[:count]), (axis,))


def partition(n_items: int, n_parts: int, align: int = 1
              ) -> list[tuple[int, int]]:
  """``n_parts`` contiguous ``[lo, hi)`` ranges covering ``range(n_items)``,
  boundaries at multiples of ``align``, sizes as equal as that allows."""
  units = -(-n_items // align)
  if n_parts > units:
    raise ValueError(f"cannot split {n_items} items into {n_parts} parts "
                     f"of whole blocks of {align}.")
  cuts = [min(n_items, (units * k // n_parts) * align)
          for k in range(n_parts + 1)]
  return list(zip(cuts[:-1], cuts[1:]))


def build_on_mesh(ratings: Ratings, plan: Plan, mesh: Mesh, *,
                  kernel_size: int = 3, conv_layers: int = 1) -> TrainingData:
  """The training ratings split by items over ``mesh``'s devices.

  Args:
    ratings: all training ratings.
    plan: how each product is computed (the same on every device).
    mesh: a 1-D mesh with axis ``"items"`` (:func:`device_mesh`).
    kernel_size, conv_layers: the global convolution (its halo).

  Returns:
    :class:`~glocal_jax.representations.TrainingData` whose arrays have a
    leading axis of one slice per device, placed on the devices; the losses,
    predictions and training functions take it as they take unsharded data.

  Raises:
    ValueError: ``ratings`` are malformed (:func:`glocal_jax.ratings.check`).
  """
  rt.check(ratings)
  host = ratings.to_host()
  m, n = host.shape
  halo = conv_layers * (kernel_size // 2)
  align = plan.block_size if "blocked" in (plan.input, plan.conv,
                                           plan.output) else 1
  parts = partition(m, mesh.size, align)
  spans = [(max(lo - halo, 0), min(hi + halo, m)) for lo, hi in parts]
  rows = max(b - a for a, b in spans)
  local = []
  for a, b in spans:
    keep = (host.items >= a) & (host.items < b)
    local.append(Ratings(host.items[keep] - a, host.users[keep],
                         host.values[keep], (rows, n)))
  nnz = max(max(r.nnz for r in local), 1)
  local = [rt.pad(r, nnz) for r in local]
  local_plan = dataclasses.replace(plan, block_size=min(plan.block_size,
                                                        rows))
  options = dict(kernel_size=kernel_size, conv_layers=conv_layers)
  built = [build(r, local_plan, valid_rows=b - a, **options)
           for r, (a, b) in zip(local, spans)]
  if built[0].blocks is not None:  # common windows: common static shapes
    window = max(d.blocks.window for d in built)
    halo_window = max(d.blocks.halo_window for d in built)
    built = [build(r, local_plan, valid_rows=b - a, window=window,
                   halo_window=halo_window, **options)
             for r, (a, b) in zip(local, spans)]
  if built[0].support is not None:  # common sizes and chunks
    sizes = [max(d.support.sizes[k] for d in built)
             for k in range(conv_layers)]
    width = max(d.support.chunks.items.shape[1] for d in built)
    positions = -(-sizes[-1] // width) * width
    built = [dataclasses.replace(d, support=sparse.pad_support(
        d.support, sizes, positions, width, nnz)) for d in built]
  built = [dataclasses.replace(d, own=np.asarray([lo - a, hi - a], np.int32),
                               row_offset=np.int32(a))
           for d, (lo, hi), (a, _) in zip(built, parts, spans)]
  stacked = jax.tree.map(lambda *x: np.stack(x), *built)
  stacked = dataclasses.replace(stacked, shape=(m, n), mesh=mesh)
  return put_global(stacked, NamedSharding(mesh, P(ITEMS)))


def put_global(tree: Any, sharding: NamedSharding) -> Any:
  """``tree``'s host arrays as global arrays of ``sharding``: each process
  places the slices of its own devices (``jax.make_array_from_callback``),
  so with several processes (``jax.distributed``) none needs to address
  another's devices. Every process passes the same ``tree``."""
  def put(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding,
                                        lambda index: x[index])
  return jax.tree.map(put, tree)


def replicated(tree: Any, mesh: Mesh) -> Any:
  """``tree`` (host or device arrays, the same in every process) as global
  arrays replicated on every device of ``mesh``."""
  return put_global(jax.device_get(tree), NamedSharding(mesh, P()))


def map_seeds(epoch: Callable, params: Any, data: Any,
              start: EpochStart, per_seed_data: bool = False) -> Any:
  """``epoch`` of one seed run over stacked seeds one after the other
  (``lax.map``); ``start.fresh`` is shared by the seeds. With
  ``per_seed_data``, ``data`` is ``(shared, stacked)`` and each seed gets
  ``(shared, its slice of stacked)`` (e.g. its own hyper-parameters)."""
  shared, stacked = data if per_seed_data else (data, None)

  def one(seed):
    p, own, value, grad, step_scale = seed
    return epoch(p, (shared, own) if per_seed_data else shared,
                 start._replace(value=value, grad=grad, step_scale=step_scale))
  return jax.lax.map(one, (params, stacked, start.value, start.grad,
                           start.step_scale))


def seeds_on_devices(epoch: Callable, mesh: Mesh,
                     per_seed_data: bool = False) -> Callable:
  """An epoch over parameters stacked along a seed axis, the seeds spread
  over ``mesh``'s devices (axis ``"seeds"``), each device running its own
  one after the other on the whole (replicated) data.

  Args:
    epoch: ``epoch(params, data, start) -> (params, stats)`` of one seed
      (``start``: :class:`glocal_jax.optim.EpochStart`).
    mesh: a 1-D mesh with axis ``"seeds"``. When the number of seeds is not
      a multiple of its size, the last seed is repeated to fill the devices
      and its copies are dropped from the result.
    per_seed_data: ``data`` is ``(shared, stacked)``, each seed getting
      ``(shared, its slice of stacked)`` (e.g. its own hyper-parameters:
      configurations spread over the devices), as in :func:`map_seeds`.

  Returns:
    ``epoch(stacked_params, data, start) -> (stacked_params,
    stacked_stats)``, jit-compiled, its arguments and results replicated on
    every device of ``mesh`` (readable by every process); ``start`` holds
    stacked ``value``, ``grad`` and ``step_scale`` and one ``fresh`` flag.
  """
  spread = jax.shard_map(
      functools.partial(map_seeds, epoch, per_seed_data=per_seed_data),
      mesh=mesh,
      in_specs=(P(SEEDS), (P(), P(SEEDS)) if per_seed_data else P(),
                EpochStart(P(SEEDS), P(SEEDS), P(), P(SEEDS))),
      out_specs=P(SEEDS), check_vma=False)
  # Arguments and results replicated on every device, so that every process
  # can read all seeds' parameters and statistics (with several processes,
  # a seed's slice may live on another process's device).
  everywhere = NamedSharding(mesh, P())

  @functools.partial(jax.jit, in_shardings=everywhere,
                     out_shardings=everywhere)
  def run(params, data, start):
    seeds = jax.tree.leaves(params)[0].shape[0]
    extra = -seeds % mesh.size
    pad = lambda tree: jax.tree.map(
        lambda x: jax.numpy.concatenate([x] + [x[-1:]] * extra), tree)
    start = start._replace(value=pad(start.value), grad=pad(start.grad),
                           step_scale=pad(start.step_scale))
    if per_seed_data:
      data = (data[0], pad(data[1]))
    return jax.tree.map(lambda x: x[:seeds], spread(pad(params), data, start))

  return run
