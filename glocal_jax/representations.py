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
for each product. All give the
dense model's loss, gradients and predictions to float32 rounding (tested
against :mod:`glocal_jax.model`). :func:`prepare` builds the data a plan
needs, once, on the host: a :class:`TrainingData` pytree, which the losses
take like an array (``jax.jit``, ``jax.vmap`` over parameters).

``representation="auto"`` chooses per product and device by
:func:`choose_plan`; the rule and the measurements behind it are in
``docs/scaling.md``.

The losses vmap over their scalar hyper-parameters as over parameters,
e.g. one compiled evaluation for several ``lambda_2``:

  >>> import jax, jax.numpy as jnp, numpy as np
  >>> import glocal_jax as gj
  >>> from glocal_jax import representations as rep
  >>> r = np.random.default_rng(0).integers(0, 6, (12, 9)).astype(float)
  >>> params = gj.init_params(jax.random.PRNGKey(0), 12, 9, hidden=(4,))
  >>> data = rep.prepare(gj.from_dense(r), rep.choose_plan((12, 9), 0,
  ...                    representation="sparse"))
  >>> loss = jax.vmap(rep.finetune_loss, in_axes=(None, None, 0, None))
  >>> losses = loss(params, data, jnp.array([1.0, 10.0, 100.0]), 0.006)
  >>> losses.shape, bool(losses[0] < losses[1] < losses[2])
  ((3,), True)
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from glocal_jax import blocked, kernels, model, sparse
from glocal_jax.kernels import AggregationFn, LocalKernelFn
from glocal_jax import ratings as rt
from glocal_jax.ratings import Ratings

REPRESENTATIONS: tuple[str, ...] = ("auto", "dense", "blocked", "sparse")
PRODUCTS: tuple[str, ...] = ("input", "conv", "output")
METHODS: tuple[str, ...] = ("dense", "blocked", "sparse")


@dataclasses.dataclass(frozen=True)
class Plan:
  """How each heavy product of a loss evaluation is computed.

  Attributes:
    input: first layer on ``R``: ``"dense"``, ``"blocked"`` or ``"sparse"``.
    conv: first layer on ``R_hat``.
    output: output layer at the observed entries.
    block_size: items per block of the blocked products.
    chunk_size: entries per chunk of the sparse products.
  """
  input: str
  conv: str
  output: str
  block_size: int
  chunk_size: int

  def __post_init__(self):
    methods = (self.input, self.conv, self.output)
    if any(m not in METHODS for m in methods):
      raise ValueError(f"each product must be one of {METHODS}, got "
                       f"{methods}.")
    if self.block_size <= 0 or self.chunk_size <= 0:
      raise ValueError(f"block_size and chunk_size must be positive, got "
                       f"{self.block_size} and {self.chunk_size}.")

  @property
  def name(self) -> str:
    """``"dense"``, ``"blocked"``, ``"sparse"``, or e.g.
    ``"input=sparse:conv=blocked:output=sparse"``."""
    methods = {self.input, self.conv, self.output}
    if len(methods) == 1:
      return self.input
    return ":".join(f"{p}={getattr(self, p)}" for p in PRODUCTS)

  def to_dict(self) -> dict:
    return {"name": self.name, **dataclasses.asdict(self)}


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["ratings", "dense", "blocks", "chunks",
                                "support", "own", "row_offset",
                                "valid_rows"],
                   meta_fields=["plan", "shape", "mesh"])
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


# --- Choosing a plan. ---

# Measured on the 2-core CPU at the ML-1M shape (docs/scaling.md,
# results/scaling_cpu_calibration.json): below these densities sparse
# products are faster than dense ones, over a schedule with twice as many
# fine-tuning as pre-training evaluations (the first layer on R and the
# output layer at the observed entries: ~3%; the first layer on R_hat at
# its support: ~8%). Not measured on GPUs, where the dense products run on
# tensor cores: there, no product is sparse.
SPARSE_BREAK_EVEN = {"cpu": {"input": 0.03, "conv": 0.08, "output": 0.03}}
# Bytes per (m, n) cell of each product's dense working set, float32
# (from the peak memory of the dense and blocked rows, docs/scaling.md),
# and per (B, n) cell of a block.
DENSE_BYTES_PER_CELL = {"input": 4, "conv": 20, "output": 8}
BLOCK_BYTES_PER_CELL = 40
# Share of the device's memory the ratings-sized working set may take.
MEMORY_SHARE = 0.5
DEFAULT_CHUNK_SIZE = {"cpu": 1024}
GPU_CHUNK_SIZE = 65536
DEFAULT_BLOCK_BYTES = {"cpu": 256 << 20}
GPU_BLOCK_BYTES = 2 << 30


def device_memory_bytes(device: Optional[jax.Device] = None) -> int:
  """Memory of ``device`` (default: the first): the accelerator's limit, or
  the host's available memory for a CPU."""
  device = device or jax.devices()[0]
  if device.platform != "cpu":
    stats = device.memory_stats() or {}
    if "bytes_limit" in stats:
      return int(stats["bytes_limit"])
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def support_density(density: float, kernel_size: int,
                    conv_layers: int) -> float:
  """Expected share of cells in the support of ``conv_layers`` stacked
  ``t x t`` convolutions, for independent positions at ``density``."""
  window = (conv_layers * (kernel_size - 1) + 1) ** 2
  return 1.0 - (1.0 - density) ** window


def parse_representation(representation: str) -> Optional[dict]:
  """``{product: method}`` of a representation, None for ``"auto"``.

  A representation is ``"auto"``, one method for all three products
  (``"dense"``, ``"blocked"``, ``"sparse"``), or one per product, e.g.
  ``"input=sparse:conv=dense:output=sparse"`` (the form
  :attr:`Plan.name` prints).

  Raises:
    ValueError: anything else.
  """
  if representation == "auto":
    return None
  if representation in METHODS:
    return dict.fromkeys(PRODUCTS, representation)
  methods = {}
  for part in representation.split(":"):
    product, _, method = part.partition("=")
    if product not in PRODUCTS or method not in METHODS or product in methods:
      methods = None
      break
    methods[product] = method
  if methods is None or set(methods) != set(PRODUCTS):
    raise ValueError(
        f"representation must be one of {REPRESENTATIONS} or "
        f"'input=M:conv=M:output=M' with each M in {METHODS}, got "
        f"{representation!r}.")
  return methods


def choose_plan(shape: tuple[int, int], nnz: int, *, kernel_size: int = 3,
                conv_layers: int = 1, representation: str = "auto",
                platform: Optional[str] = None,
                memory_bytes: Optional[int] = None, copies: int = 1,
                block_size: int = 0, chunk_size: int = 0) -> Plan:
  """The :class:`Plan` for ``representation`` on this data and device.

  A named method, or a per-product spec, is used as given (see
  :func:`parse_representation`). ``"auto"`` picks each product's method:

  1. ``"sparse"`` when the density of what it multiplies is below the
     platform's ``SPARSE_BREAK_EVEN`` for that product (the observed
     entries for ``input`` and ``output``; the convolution's support,
     :func:`support_density`, for ``conv``). On a GPU no product is sparse
     (not measured there yet).
  2. Else ``"dense"`` when the dense working set of the products chosen
     dense so far fits in ``MEMORY_SHARE`` of the device's memory
     (``DENSE_BYTES_PER_CELL`` per product and ``(m, n)`` cell, times
     ``copies``).
  3. Else ``"blocked"``.

  Args:
    shape: ``(m, n)``.
    nnz: number of training ratings.
    kernel_size, conv_layers: the global convolution.
    representation: see :func:`parse_representation`.
    platform: ``"cpu"``, ``"gpu"``, ... (default: JAX's default backend).
    memory_bytes: device memory (default: :func:`device_memory_bytes`).
    copies: models trained at once (vmapped seeds).
    block_size: items per block (0: the largest block whose working set
      fits ``DEFAULT_BLOCK_BYTES``).
    chunk_size: entries per sparse chunk (0: ``DEFAULT_CHUNK_SIZE``).
  """
  methods = parse_representation(representation)
  m, n = shape
  platform = platform or jax.default_backend()
  if not chunk_size:
    chunk_size = DEFAULT_CHUNK_SIZE.get(platform, GPU_CHUNK_SIZE)
  if not block_size:
    budget = DEFAULT_BLOCK_BYTES.get(platform, GPU_BLOCK_BYTES)
    block_size = max(8, budget // (BLOCK_BYTES_PER_CELL * n * copies)
                     // 8 * 8)
  block_size = min(block_size, m)
  if methods is None:
    memory_bytes = memory_bytes or device_memory_bytes()
    break_even = SPARSE_BREAK_EVEN.get(platform, {})
    density = nnz / (m * n)
    densities = {"input": density, "output": density,
                 "conv": support_density(density, kernel_size, conv_layers)}
    methods, dense_bytes = {}, 0
    for product in PRODUCTS:
      cost = DENSE_BYTES_PER_CELL[product] * m * n * copies
      if densities[product] < break_even.get(product, 0.0):
        methods[product] = "sparse"
      elif dense_bytes + cost <= MEMORY_SHARE * memory_bytes:
        methods[product] = "dense"
        dense_bytes += cost
      else:
        methods[product] = "blocked"
  return Plan(block_size=block_size, chunk_size=chunk_size, **methods)


# Memory model of a training run (float32), calibrated against the peak
# resident memory measured on the CPU (docs/scaling.md): the process with
# JAX and the data loaded; parameter-sized arrays besides the L-BFGS
# history (iterate, gradient, direction, line-search trials, kernelised
# weights and their gradients); hidden activations and their gradients;
# bytes per entry of a sparse product (triplets and chunk buffers; for the
# convolution, the t*t neighbour indices and values).
RUNTIME_BYTES = 500 << 20
PARAMETER_COPIES = 10
ACTIVATION_COPIES = 6
SPARSE_BYTES_PER_ENTRY = {"input": 24, "output": 24}
DATA_BYTES_PER_RATING = 36


def estimate_memory_bytes(plan: Plan, shape: tuple[int, int], nnz: int, *,
                          hidden: Sequence[int], n_dim: int = 5,
                          kernel_size: int = 3, conv_layers: int = 1,
                          history_size: int = 10, copies: int = 1,
                          devices: int = 1) -> int:
  """Estimated peak memory of training with ``plan``, in bytes, per device.

  The sum of the runtime, the ratings, and per model trained at once
  (``copies``): the L-BFGS history (``2 * history_size`` parameter-sized
  arrays) and ``PARAMETER_COPIES`` more, the hidden activations, and each
  product's working set (``DENSE_BYTES_PER_CELL`` per ``(m, n)`` cell,
  ``BLOCK_BYTES_PER_CELL`` per ``(B, n)`` cell, or per sparse entry). With
  the items split over ``devices``, each holds the parameters and its share
  of the rest.
  """
  m, n = shape
  sizes = [n, *hidden, n]
  pairs = list(zip(sizes[:-1], sizes[1:]))
  params = (sum(a * b + n_dim * (a + b) + b for a, b in pairs)
            + m * kernel_size ** 2 * conv_layers)
  support = support_density(nnz / (m * n), kernel_size, conv_layers) * m * n
  work = 0.0
  for product in PRODUCTS:
    method = getattr(plan, product)
    if method == "dense":
      work += DENSE_BYTES_PER_CELL[product] * m * n
    elif method == "blocked":
      work += BLOCK_BYTES_PER_CELL * plan.block_size * n
    elif product == "conv":
      work += (4 * kernel_size ** 2 * conv_layers + 24) * support
    else:
      work += SPARSE_BYTES_PER_ENTRY[product] * nnz
  per_copy = (4 * params * (2 * history_size + PARAMETER_COPIES)
              + (4 * m * sum(hidden) * ACTIVATION_COPIES + work) / devices)
  return int(RUNTIME_BYTES + DATA_BYTES_PER_RATING * nnz / devices
             + copies * per_copy)


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


def prepare(ratings: Ratings, plan: Plan, *, kernel_size: int = 3,
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
                local_kernel: LocalKernelFn = kernels.local_kernel
                ) -> jax.Array:
  """``H_L``: the last hidden layer for every row, ``(rows, hidden[-1])``.

  Of ``AE(R)`` (``finetuned=False``: the pre-trained model) or of
  ``AE(R_hat)`` (GLocal-K). ``dense_layers``: the kernelised layers, if
  already computed; ``axis_name``: inside a sharded computation;
  ``aggregation`` and ``local_kernel`` as in
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
                       axis_name, local_kernel)
  return model.finish_encoding(
      dense_layers, first_layer_on_r_hat(data, gks, first["w"]) + first["b"])


def global_kernels(params: model.Params, data: TrainingData,
                   dot_scale: float | jax.Array = 1.0,
                   aggregation: str | AggregationFn = "weighted",
                   dense_layers: Optional[list] = None,
                   axis_name: Optional[str] = None,
                   local_kernel: LocalKernelFn = kernels.local_kernel
                   ) -> list[jax.Array]:
  """One ``(t, t)`` global kernel per bank (Eq. 5), from the item pooling
  (Eq. 4) of the autoencoder's predictions on ``R``.

  With ``axis_name`` (inside a sharded computation) each device pools its
  own items; for ``"weighted"`` the weighted sums are added across
  devices, for any other function the pooled predictions of all items are
  gathered first, so that it sees what it sees on one device.
  """
  banks = params["kernel_banks"]
  if not kernels.uses_pooling(aggregation):
    return [kernels.global_kernel(jnp.zeros(bank.shape[:1]), bank, dot_scale,
                                  aggregation) for bank in banks]
  if dense_layers is None:
    dense_layers, _ = model.kernelised_layers(params["autoencoder"],
                                              local_kernel=local_kernel)
  pooled = model.pooled_predictions(
      dense_layers[-1], hidden_code(params, data, False,
                                    dense_layers=dense_layers))
  pooled = jnp.where(own_rows(data), pooled, 0.0)
  additive = isinstance(aggregation, str) and aggregation == "weighted"
  if axis_name is not None and not additive:
    pooled = _gather_rows(pooled, data, axis_name)
    return [kernels.global_kernel(pooled, bank, dot_scale, aggregation)
            for bank in banks]
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
    data: from :func:`prepare` (or :func:`glocal_jax.sharding.prepare`).
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
                  local_kernel: LocalKernelFn = kernels.local_kernel
                  ) -> jax.Array:
  """Fine-tuning loss ``L_f = ||M * (R - AE(R_hat))||^2 / 2 + reg``.

  Equal to :func:`glocal_jax.model.finetune_loss` on the dense matrix, on
  one device or sharded; ``R_hat`` is recomputed from the current
  parameters at every call. ``aggregation`` and ``local_kernel`` may be
  any functions of their signatures
  (:func:`glocal_jax.kernels.global_kernel`,
  :func:`glocal_jax.kernels.local_kernel`).
  """
  def loss(params, data, lambda_2, lambda_s, dot_scale, axis_name):
    dense_layers, reg = model.kernelised_layers(params["autoencoder"],
                                                lambda_2, lambda_s,
                                                local_kernel)
    h = hidden_code(params, data, True, dot_scale, aggregation,
                    dense_layers=dense_layers, axis_name=axis_name)
    return _data_term(output_loss(data, h, dense_layers[-1]), axis_name) + reg

  return _on_devices(loss, params, data, jnp.asarray(lambda_2),
                     jnp.asarray(lambda_s), jnp.asarray(dot_scale))


def item_codes(params: model.Params, data: TrainingData, finetuned: bool,
               dot_scale: float | jax.Array = 1.0,
               aggregation: str | AggregationFn = "weighted",
               local_kernel: LocalKernelFn = kernels.local_kernel
               ) -> jax.Array:
  """``H_L`` of every item of the matrix, ``(m, hidden[-1])``, on one device
  or gathered from the devices that own them."""
  def codes(params, data, dot_scale, axis_name):
    h = hidden_code(params, data, finetuned, dot_scale, aggregation,
                    axis_name=axis_name, local_kernel=local_kernel)
    return h if axis_name is None else _gather_rows(h, data, axis_name)

  return _on_devices(codes, params, data, jnp.asarray(dot_scale))


def predict(params: model.Params, data: TrainingData, items: jax.Array,
            users: jax.Array, finetuned: bool,
            dot_scale: float | jax.Array = 1.0,
            aggregation: str | AggregationFn = "weighted",
            local_kernel: LocalKernelFn = kernels.local_kernel
            ) -> jax.Array:
  """Unclipped predictions at ``(items, users)`` pairs, ``(k,)``.

  ``AE(R)`` when not ``finetuned``, else ``AE(R_hat)``; no ``(m, n)``
  matrix is formed whatever the plan.
  """
  dense_layers, _ = model.kernelised_layers(params["autoencoder"],
                                            local_kernel=local_kernel)
  h = item_codes(params, data, finetuned, dot_scale, aggregation,
                 local_kernel)
  out = dense_layers[-1]
  return sparse.predict_at(h, out["w"], out["b"], items, users,
                           data.plan.chunk_size)
