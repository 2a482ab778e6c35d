"""How GLocal-K's loss is computed on a device: the :class:`Plan` (dense,
blocked or sparse, per heavy product), the rule that chooses it
(:func:`choose_plan`) and the memory model behind that rule
(:func:`estimate_memory_bytes`).

A loss evaluation does three heavy products (``input``, ``conv``,
``output``; :mod:`glocal_jax.representations` computes them); a plan says
how each is computed. The measurements behind the rule and the memory model
are in ``docs/scaling.md``. Nothing here reads the device's state unless
asked: :func:`device_memory_bytes` is the one function that does, and the
callers pass its value in.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

import jax

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
