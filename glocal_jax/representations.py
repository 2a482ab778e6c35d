"""GLocal-K's losses on a :class:`~glocal_jax.ratings.Ratings` pytree.

A loss evaluation does three heavy products, each ``O(m * n * h)`` when
computed densely:

* ``input``: the first layer on ``R`` (``R @ W_1'``), for the item pooling
  of Eq. 4 (fine-tuning) or the autoencoder itself (pre-training);
* ``conv``: the first layer on ``R_hat = relu(R (*) GK)`` (Eq. 6);
* ``output``: the output layer and the squared error at the observed
  entries.

A :class:`Plan` says how each is computed: ``"dense"`` (the whole ``(m, n)``
matrix on the device, plain autodiff), ``"blocked"``
(:mod:`glocal_jax.blocked`, blocks of items, memory ``O(B * n)``) or
``"sparse"`` (:mod:`glocal_jax.sparse`, ``O(nnz * h)`` work), independently
for each product. All give the dense model's loss, gradients and
predictions to float32 rounding (tested against :mod:`glocal_jax.model`).
:func:`build_on_device` builds the data a plan needs, once, on the host: a
:class:`TrainingData` pytree, which the losses take like an array
(``jax.jit``, ``jax.vmap`` over parameters).

``representation="auto"`` chooses per product and device by
:func:`choose_plan`; the rule and the measurements behind it are in
``docs/scaling.md``.

The losses vmap over their scalar hyper-parameters as over parameters,
e.g. one compiled evaluation for several ``lambda_2``:

  >>> import jax, jax.numpy as jnp, numpy as np
  >>> import glocal_jax as gj
  >>> from glocal_jax import plan, representations as rep
  >>> r = np.random.default_rng(0).integers(0, 6, (12, 9)).astype(float)
  >>> params = gj.init_params(jax.random.PRNGKey(0), 12, 9, hidden=(4,))
  >>> sparse = plan.choose_plan((12, 9), 0, representation="sparse")
  >>> data = rep.build_on_device(gj.from_dense(r), sparse)
  >>> loss = jax.vmap(rep.finetune_loss, in_axes=(None, None, 0, None))
  >>> losses = loss(params, data, jnp.array([1.0, 10.0, 100.0]), 0.006)
  >>> losses.shape, bool(losses[0] < losses[1] < losses[2])
  ((3,), True)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
import numpy as np

from glocal_jax import blocked
from glocal_jax import kernels
from glocal_jax import model
from glocal_jax import ratings as rt
from glocal_jax import sparse
from glocal_jax.kernels import AggregationFn
from glocal_jax.kernels import LocalKernelFn
from glocal_jax.kernels import PoolingFn
from glocal_jax.plan import Plan
from glocal_jax.ratings import Ratings


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["ratings", "dense", "blocks", "chunks",
                                "support", "own", "row_offset",
                                "valid_rows"],
                   meta_fields=["plan", "shape", "mesh", "orientation"])
@dataclasses.dataclass(frozen=True)
class TrainingData:
  """The training ratings in the forms a :class:`Plan` needs.

  On one device it holds the whole matrix. Sharded over a device mesh
  (:mod:`glocal_jax.sharding`), every array has a leading device axis and
  each device's slice is the same structure for its own items and the halo
  rows its convolution needs; the losses and predictions below take either.

  Attributes:
    ratings: the training triplets (always).
    dense: ``(m, n)`` matrix, for the dense plan; else None.
    blocks: :class:`~glocal_jax.blocked.Blocks`, for blocked products.
    chunks: :class:`~glocal_jax.sparse.Chunks` of the ratings, for sparse
      ``input``/``output`` products.
    support: :class:`~glocal_jax.sparse.Support`, for a sparse ``conv``.
    own: ``(2,)`` int32, the rows ``[own[0], own[1])`` whose ratings count
      in the loss and whose pooled predictions enter the global kernel
      (``[0, m)`` on one device; a device's own items when sharded).
    row_offset: int32, the global item of row 0 (0 on one device).
    valid_rows: int32, rows ``>= valid_rows`` are padding past the matrix's
      last item (``m`` on one device).
    plan: the :class:`Plan` (static).
    shape: ``(m, n)`` of the whole rating matrix (static).
    mesh: the device mesh of sharded data, or None (static).
    orientation: ``"items"``: the rows are the data's items; ``"users"``:
      the matrix is transposed, for a user-based model
      (:func:`glocal_jax.matrix.prepare`; static).
  """
  ratings: Ratings
  dense: Optional[Any]
  blocks: Optional[blocked.Blocks]
  chunks: Optional[sparse.Chunks]
  support: Optional[sparse.Support]
  own: Any
  row_offset: Any
  valid_rows: Any
  plan: Plan
  shape: tuple[int, int]
  mesh: Any = None
  orientation: str = "items"


def build(ratings: Ratings, plan: Plan, *, kernel_size: int = 3,
          conv_layers: int = 1, window: int = 1, halo_window: int = 1,
          valid_rows: Optional[int] = None) -> TrainingData:
  """What ``plan`` needs from the training ratings, on the host.

  ``window``, ``halo_window``: lower bounds of the blocks' windows (see
  :func:`glocal_jax.blocked.make_blocks`); ``valid_rows``: rows past it
  are padding outside the matrix (default: none).
  """
  host = ratings.to_host()
  m, n = host.shape
  valid_rows = m if valid_rows is None else valid_rows
  methods = {plan.input, plan.conv, plan.output}
  dense = blocks = chunks = support = None
  if "dense" in methods:
    dense = np.asarray(host.to_dense())
  if "blocked" in methods:
    halo = conv_layers * (kernel_size // 2) if plan.conv == "blocked" else 0
    blocks = blocked.make_blocks(host, plan.block_size, halo, window,
                                 halo_window)
  if "sparse" in (plan.input, plan.output):
    chunks = sparse.make_chunks(host, plan.chunk_size)
  if plan.conv == "sparse":  # grown inside the valid rows only
    support = sparse.make_support(
        dataclasses.replace(host, shape=(valid_rows, n)), kernel_size,
        conv_layers, plan.chunk_size)
    support = dataclasses.replace(support, chunks=dataclasses.replace(
        support.chunks, shape=(m, n)))
  return TrainingData(host, dense, blocks, chunks, support,
                      np.asarray([0, m], np.int32), np.int32(0),
                      np.int32(valid_rows), plan, host.shape)


def build_on_device(ratings: Ratings, plan: Plan, *, kernel_size: int = 3,
                    conv_layers: int = 1) -> TrainingData:
  """Builds what ``plan`` needs from the training ratings (host, once) and
  puts it on the default device.

  Args:
    ratings: training ratings.
    plan: from :func:`choose_plan`.
    kernel_size, conv_layers: the global convolution (the blocks' halo and
      the sparse support depend on them).

  Returns:
    :class:`TrainingData` with device arrays.

  Raises:
    ValueError: ``ratings`` are malformed (:func:`glocal_jax.ratings.check`:
      unsorted, out of range, a cell twice), which would give wrong losses
      silently.
  """
  rt.check(ratings)
  return jax.device_put(build(ratings, plan, kernel_size=kernel_size,
                              conv_layers=conv_layers))


# --- The three products. ---

def first_layer_on_ratings(data: TrainingData, w: jax.Array) -> jax.Array:
  """``R @ w``: ``(n, h) -> (m, h)``, by ``data.plan.input``."""
  method = data.plan.input
  if method == "dense":
    return data.dense.astype(w.dtype) @ w
  if method == "blocked":
    return blocked.matmul(data.blocks, w)
  return sparse.matmul(data.chunks, w)


def first_layer_on_r_hat(data: TrainingData,
                         global_kernels: Sequence[jax.Array],
                         w: jax.Array) -> jax.Array:
  """``R_hat @ w`` with ``R_hat`` the stacked global convolutions of ``R``
  (Eq. 6), by ``data.plan.conv``."""
  method = data.plan.conv
  if method == "dense":
    x = data.dense.astype(w.dtype)
    valid = (jnp.arange(x.shape[0]) < data.valid_rows)[:, None]
    for kernel in global_kernels:
      x = jnp.where(valid, kernels.global_conv(x, kernel), 0.0)
    return x @ w
  if method == "blocked":
    return blocked.conv_matmul(data.blocks, tuple(global_kernels), w,
                               data.valid_rows)
  values = sparse.conv_values(data.support, data.ratings.values,
                              global_kernels)
  return sparse.matmul(data.support.chunks, w, values.astype(w.dtype))


def output_loss(data: TrainingData, h: jax.Array,
                dense_layer: model.Layer) -> jax.Array:
  """``sum over observed (r - decode(h))^2 / 2``, by ``data.plan.output``."""
  method = data.plan.output
  w, b = dense_layer["w"], dense_layer["b"]
  if method == "dense":
    r = data.dense.astype(w.dtype)
    mask = (r > 0) & own_rows(data)[:, None]
    return model.masked_squared_error(model.decode(dense_layer, h), r, mask)
  if method == "blocked":
    return blocked.output_loss(data.blocks, h, w, b, data.own)
  return sparse.output_loss(data.chunks, h, w, b, data.own)


def own_rows(data: TrainingData) -> jax.Array:
  """``(rows,)`` bool: the rows of ``data``'s matrix that are its own."""
  row = jnp.arange(data.ratings.shape[0])
  return (row >= data.own[0]) & (row < data.own[1])


# --- The model on TrainingData. ---

def hidden_code(params: model.Params, data: TrainingData, finetuned: bool,
                dot_scale: float | jax.Array = 1.0,
                aggregation: str | AggregationFn = "weighted",
                dense_layers: Optional[list] = None,
                axis_name: Optional[str] = None,
                local_kernel: LocalKernelFn = kernels.local_kernel,
                pooling: PoolingFn = kernels.item_average_pooling
                ) -> jax.Array:
  """``H_L``: the last hidden layer for every row, ``(rows, hidden[-1])``.

  Of ``AE(R)`` (``finetuned=False``: the pre-trained model) or of
  ``AE(R_hat)`` (GLocal-K). ``dense_layers``: the kernelised layers, if
  already computed; ``axis_name``: inside a sharded computation;
  ``aggregation``, ``local_kernel`` and ``pooling`` as in
  :func:`glocal_jax.model.finetune_loss`.
  """
  if dense_layers is None:
    dense_layers, _ = model.kernelised_layers(params["autoencoder"],
                                              local_kernel=local_kernel)
  first = dense_layers[0]
  if not finetuned:
    return model.finish_encoding(
        dense_layers, first_layer_on_ratings(data, first["w"]) + first["b"])
  gks = global_kernels(params, data, dot_scale, aggregation, dense_layers,
                       axis_name, local_kernel, pooling)
  return model.finish_encoding(
      dense_layers, first_layer_on_r_hat(data, gks, first["w"]) + first["b"])


def global_kernels(params: model.Params, data: TrainingData,
                   dot_scale: float | jax.Array = 1.0,
                   aggregation: str | AggregationFn = "weighted",
                   dense_layers: Optional[list] = None,
                   axis_name: Optional[str] = None,
                   local_kernel: LocalKernelFn = kernels.local_kernel,
                   pooling: PoolingFn = kernels.item_average_pooling
                   ) -> list[jax.Array]:
  """One ``(t, t)`` global kernel per bank (Eq. 5), from the item pooling
  (Eq. 4) of the autoencoder's predictions on ``R``.

  The paper's average pooling comes from the hidden layer
  (:func:`glocal_jax.model.item_summaries`); another ``pooling`` function
  costs a pass over the ``(rows, n)`` predictions. With ``axis_name``
  (inside a sharded computation) each device pools its own items; for
  ``"weighted"`` and the average the weighted sums are added across
  devices; for any other function the pooled predictions of all items (for
  another pooling, the hidden codes of all items) are gathered first, so
  that it sees what it sees on one device.
  """
  banks = params["kernel_banks"]
  if not kernels.uses_pooling(aggregation):
    return [kernels.global_kernel(jnp.zeros(bank.shape[:1]), bank, dot_scale,
                                  aggregation) for bank in banks]
  if dense_layers is None:
    dense_layers, _ = model.kernelised_layers(params["autoencoder"],
                                              local_kernel=local_kernel)
  h = hidden_code(params, data, False, dense_layers=dense_layers)
  additive = (isinstance(aggregation, str) and aggregation == "weighted"
              and pooling is kernels.item_average_pooling)
  if axis_name is not None and not additive:
    if pooling is kernels.item_average_pooling:  # per item: gather (m,)
      pooled = _gather_rows(model.pooled_predictions(dense_layers[-1], h),
                            data, axis_name)
    else:  # the function sees every item's predictions, as on one device
      pooled = model.item_summaries(dense_layers[-1],
                                    _gather_rows(h, data, axis_name), pooling)
    return [kernels.global_kernel(pooled, bank, dot_scale, aggregation)
            for bank in banks]
  pooled = jnp.where(own_rows(data),
                     model.item_summaries(dense_layers[-1], h, pooling), 0.0)
  rows = pooled.shape[0]
  out = []
  for bank in banks:
    local = jax.lax.dynamic_slice_in_dim(
        jnp.pad(bank, ((0, rows), (0, 0))), data.row_offset, rows)
    kernel = kernels.global_kernel(pooled, local, dot_scale, aggregation)
    out.append(kernel if axis_name is None else
               jax.lax.psum(kernel, axis_name))
  return out


def _gather_rows(values: jax.Array, data: TrainingData,
                 axis_name: str) -> jax.Array:
  """``(m, ...)``: each device's own rows of ``values`` (zero elsewhere)
  placed at their global items and added across devices."""
  own = jnp.where(own_rows(data).reshape((-1,) + (1,) * (values.ndim - 1)),
                  values, 0.0)
  rows = own.shape[0]
  placed = jax.lax.dynamic_update_slice_in_dim(
      jnp.zeros((data.shape[0] + rows,) + values.shape[1:], values.dtype),
      own, data.row_offset, 0)
  return jax.lax.psum(placed, axis_name)[:data.shape[0]]


ITEMS = "items"  # the mesh axis that items are sharded over


def _on_devices(fn, params, data: TrainingData, *args):
  """``fn(params, data, *args, axis_name)``: on one device, or on every
  device of ``data.mesh``, each with its own slice of ``data`` (parameters
  and ``args`` replicated); ``fn`` adds across devices what it must, and
  the result is the same on every device."""
  if data.mesh is None:
    return fn(params, data, *args, axis_name=None)

  def local(params, data, *args):
    data = jax.tree.map(lambda x: x[0], data)
    return fn(params, dataclasses.replace(data, mesh=None), *args,
              axis_name=ITEMS)

  specs = (P(), P(ITEMS), *(P() for _ in args))
  return jax.shard_map(local, mesh=data.mesh, in_specs=specs, out_specs=P(),
                       check_vma=False)(params, data, *args)


def _data_term(value: jax.Array, axis_name: Optional[str]) -> jax.Array:
  return value if axis_name is None else jax.lax.psum(value, axis_name)


def pretrain_loss(layers: Sequence[model.Layer], data: TrainingData,
                  lambda_2: float | jax.Array,
                  lambda_s: float | jax.Array,
                  local_kernel: LocalKernelFn = kernels.local_kernel
                  ) -> jax.Array:
  """Pre-training loss ``L_p = ||M * (R - AE(R))||^2 / 2 + reg``.

  Equal to :func:`glocal_jax.model.pretrain_loss` on the dense matrix, on
  one device or sharded.

  Args:
    layers: ``params["autoencoder"]``.
    data: from :func:`build_on_device` (or
      :func:`glocal_jax.sharding.build_on_mesh`).
    lambda_2: L2 penalty on the weights.
    lambda_s: L2 penalty on the local kernels.
    local_kernel: ``K(U, V)`` (default: Eq. 2).
  """
  def loss(layers, data, lambda_2, lambda_s, axis_name):
    dense_layers, reg = model.kernelised_layers(layers, lambda_2, lambda_s,
                                                local_kernel)
    h = hidden_code({"autoencoder": layers}, data, False,
                    dense_layers=dense_layers)
    return _data_term(output_loss(data, h, dense_layers[-1]), axis_name) + reg

  return _on_devices(loss, layers, data, jnp.asarray(lambda_2),
                     jnp.asarray(lambda_s))


def finetune_loss(params: model.Params, data: TrainingData,
                  lambda_2: float | jax.Array, lambda_s: float | jax.Array,
                  dot_scale: float | jax.Array = 1.0,
                  aggregation: str | AggregationFn = "weighted",
                  local_kernel: LocalKernelFn = kernels.local_kernel,
                  pooling: PoolingFn = kernels.item_average_pooling
                  ) -> jax.Array:
  """Fine-tuning loss ``L_f = ||M * (R - AE(R_hat))||^2 / 2 + reg``.

  Equal to :func:`glocal_jax.model.finetune_loss` on the dense matrix, on
  one device or sharded; ``R_hat`` is recomputed from the current
  parameters at every call. ``aggregation``, ``local_kernel`` and
  ``pooling`` may be any functions of their signatures
  (:func:`glocal_jax.kernels.global_kernel`,
  :func:`glocal_jax.kernels.local_kernel`,
  :func:`glocal_jax.kernels.item_average_pooling`).
  """
  def loss(params, data, lambda_2, lambda_s, dot_scale, axis_name):
    dense_layers, reg = model.kernelised_layers(params["autoencoder"],
                                                lambda_2, lambda_s,
                                                local_kernel)
    h = hidden_code(params, data, True, dot_scale, aggregation,
                    dense_layers=dense_layers, axis_name=axis_name,
                    local_kernel=local_kernel, pooling=pooling)
    return _data_term(output_loss(data, h, dense_layers[-1]), axis_name) + reg

  return _on_devices(loss, params, data, jnp.asarray(lambda_2),
                     jnp.asarray(lambda_s), jnp.asarray(dot_scale))


def item_codes(params: model.Params, data: TrainingData, finetuned: bool,
               dot_scale: float | jax.Array = 1.0,
               aggregation: str | AggregationFn = "weighted",
               local_kernel: LocalKernelFn = kernels.local_kernel,
               pooling: PoolingFn = kernels.item_average_pooling
               ) -> jax.Array:
  """``H_L`` of every item of the matrix, ``(m, hidden[-1])``, on one device
  or gathered from the devices that own them."""
  def codes(params, data, dot_scale, axis_name):
    h = hidden_code(params, data, finetuned, dot_scale, aggregation,
                    axis_name=axis_name, local_kernel=local_kernel,
                    pooling=pooling)
    return h if axis_name is None else _gather_rows(h, data, axis_name)

  return _on_devices(codes, params, data, jnp.asarray(dot_scale))


def predictions_at(params: model.Params, data: TrainingData,
                   rows: jax.Array, cols: jax.Array, finetuned: bool,
                   dot_scale: float | jax.Array = 1.0,
                   aggregation: str | AggregationFn = "weighted",
                   local_kernel: LocalKernelFn = kernels.local_kernel,
                   pooling: PoolingFn = kernels.item_average_pooling
                   ) -> jax.Array:
  """Unclipped predictions at the ``(rows, cols)`` cells of ``data``'s
  matrix, ``(k,)``.

  ``AE(R)`` when not ``finetuned``, else ``AE(R_hat)``; no ``(m, n)``
  matrix is formed whatever the plan (but by a ``pooling`` other than the
  average, on the way to ``R_hat``). :func:`glocal_jax.predict` takes the
  cells of the items x users matrix for either orientation.
  """
  dense_layers, _ = model.kernelised_layers(params["autoencoder"],
                                            local_kernel=local_kernel)
  h = item_codes(params, data, finetuned, dot_scale, aggregation,
                 local_kernel, pooling)
  out = dense_layers[-1]
  return sparse.predict_at(h, out["w"], out["b"], rows, cols,
                           data.plan.chunk_size)
