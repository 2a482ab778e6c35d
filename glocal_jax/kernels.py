"""Local and global kernels of GLocal-K (paper Section 2, Eqs. 2-6).

Every function here is pure and works under ``jax.jit``, ``jax.grad`` and
``jax.vmap``. Shapes follow the paper: the rating matrix is ``(m, n)``, items
by users.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Literal

import jax
import jax.numpy as jnp

Aggregation = Literal["weighted", "mean"]
# ``aggregate(pooled (m,), kernel_bank (m, t*t), dot_scale) -> (t*t,)``.
AggregationFn = Callable[[jax.Array, jax.Array, Any], jax.Array]
# ``kernel(u (n_in, 1, d), v (1, n_out, d)) -> (n_in, n_out)``.
LocalKernelFn = Callable[[jax.Array, jax.Array], jax.Array]
# ``pool(predictions (m, n)) -> (m,)``: one summary per item (Eq. 4).
PoolingFn = Callable[[jax.Array], jax.Array]


def local_kernel(u: jax.Array, v: jax.Array) -> jax.Array:
  """Finite-support RBF kernel, paper Eq. (2).

  ``K_ij = max(0, 1 - ||u_i - v_j||_2^2)``, with the squared distance
  expanded as ``||u_i||^2 + ||v_j||^2 - 2 u_i . v_j`` so that no
  ``(n_in, n_out, d)`` difference tensor is formed (the output layer of a
  Netflix-sized model has ``n_out = 480,189``). The inner products run at
  the highest matmul precision (no TF32/bf16 shortcuts), since the distance
  is a difference of nearby numbers.

  Any function of this signature can replace it (``local_kernel=`` of
  :func:`glocal_jax.model.kernelised_layers`, of the losses, and of
  :class:`glocal_jax.GLocalKConfig`); :func:`squared_distances` helps.

  Args:
    u: ``(n_in, 1, d)`` (or ``(n_in, d)``) input-side embeddings.
    v: ``(1, n_out, d)`` (or ``(n_out, d)``) output-side embeddings.

  Returns:
    ``(n_in, n_out)`` kernel matrix with entries in ``[0, 1]``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from glocal_jax import kernels
    >>> u = jnp.zeros((2, 1, 3))
    >>> v = jnp.array([[[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [2.0, 0.0, 0.0]]])
    >>> kernels.local_kernel(u, v).tolist()
    [[1.0, 0.75, 0.0], [1.0, 0.75, 0.0]]
  """
  return jnp.maximum(0.0, 1.0 - squared_distances(u, v))


def squared_distances(u: jax.Array, v: jax.Array) -> jax.Array:
  """``(n_in, n_out)`` squared distances ``||u_i - v_j||^2`` of the
  embeddings ``u (n_in, 1, d)`` and ``v (1, n_out, d)`` (or 2-D), without a
  ``(n_in, n_out, d)`` difference tensor (highest matmul precision)."""
  u = u.reshape(u.shape[0], u.shape[-1])
  v = v.reshape(v.shape[-2], v.shape[-1])
  return (jnp.sum(jnp.square(u), axis=1)[:, None]
          + jnp.sum(jnp.square(v), axis=1)[None, :]
          - 2.0 * jnp.matmul(u, v.T, precision=jax.lax.Precision.HIGHEST))


def kernelised_weight(w: jax.Array, u: jax.Array, v: jax.Array,
                      kernel: LocalKernelFn = local_kernel) -> jax.Array:
  """Local kernelised weight matrix, paper Eq. (3): ``W' = W * K(U, V)``.

  Args:
    w: ``(n_in, n_out)`` dense weights.
    u: ``(n_in, 1, d)`` input-side embeddings.
    v: ``(1, n_out, d)`` output-side embeddings.
    kernel: the local kernel (default: Eq. 2's :func:`local_kernel`).

  Returns:
    ``(n_in, n_out)`` sparsified weights.
  """
  return w * kernel(u, v)


def item_average_pooling(predictions: jax.Array) -> jax.Array:
  """Item-based average pooling, paper Eq. (4): ``mu_i = mean_j R'_ij``.

  Args:
    predictions: ``(m, n)`` decoder output, items by users.

  Returns:
    ``(m,)`` one summary per item.
  """
  return jnp.mean(predictions, axis=1)


# The named poolings of Eq. 4; any PoolingFn can be given instead. The mean
# is computed from the hidden layer without the (m, n) predictions
# (glocal_jax.model.item_summaries); another function costs an (m, n) pass.
POOLINGS: dict[str, PoolingFn] = {"mean": item_average_pooling}


def pooling_fn(pooling: str | PoolingFn) -> PoolingFn:
  """The function of a named pooling (:data:`POOLINGS`), or ``pooling``
  itself when it is one.

  Examples:
    >>> import jax.numpy as jnp
    >>> from glocal_jax import kernels
    >>> kernels.pooling_fn("mean") is kernels.item_average_pooling
    True
    >>> top = kernels.pooling_fn(lambda p: jnp.max(p, axis=1))
    >>> top(jnp.array([[1.0, 3.0], [2.0, 0.0]])).tolist()
    [3.0, 2.0]
  """
  return _named(pooling, POOLINGS, "pooling")


def _named(value: Any, named: dict[str, Callable], what: str) -> Callable:
  """``named[value]``, or ``value`` itself when it is a function."""
  if callable(value):
    return value
  if value not in named:
    raise ValueError(f"{what} must be one of {tuple(named)} or a function, "
                     f"got {value!r}.")
  return named[value]


def weighted_aggregation(pooled: jax.Array, kernel_bank: jax.Array,
                         dot_scale: float | jax.Array = 1.0) -> jax.Array:
  """The paper's aggregation, Eq. (5): ``dot_scale * sum_i mu_i k_i``,
  ``(m,), (m, t*t) -> (t*t,)``."""
  return (pooled @ kernel_bank) * dot_scale


def mean_aggregation(pooled: jax.Array, kernel_bank: jax.Array,
                     dot_scale: float | jax.Array = 1.0) -> jax.Array:
  """Table 2's element-wise variant: ``mean_i k_i`` (``pooled`` and
  ``dot_scale`` unused), ``(m,), (m, t*t) -> (t*t,)``."""
  del pooled, dot_scale
  return jnp.mean(kernel_bank, axis=0)


# The named aggregations; any AggregationFn can be given instead.
AGGREGATIONS: dict[str, AggregationFn] = {"weighted": weighted_aggregation,
                                          "mean": mean_aggregation}


def aggregation_fn(aggregation: str | AggregationFn) -> AggregationFn:
  """The function of a named aggregation (:data:`AGGREGATIONS`), or
  ``aggregation`` itself when it is one."""
  return _named(aggregation, AGGREGATIONS, "aggregation")


def uses_pooling(aggregation: str | AggregationFn) -> bool:
  """Whether ``aggregation`` reads the pooled predictions (all but
  ``"mean"``; a function is assumed to), so that the pooling pass of Eq. 4
  can be skipped when it does not."""
  return not (isinstance(aggregation, str) and aggregation == "mean")


def global_kernel(pooled: jax.Array, kernel_bank: jax.Array,
                  dot_scale: float | jax.Array = 1.0,
                  aggregation: str | AggregationFn = "weighted"
                  ) -> jax.Array:
  """Aggregates the kernel bank into one global kernel, paper Eq. (5).

  ``"weighted"`` (the paper's, :func:`weighted_aggregation`):
  ``GK = dot_scale * sum_i mu_i k_i``. ``"mean"`` (Table 2's element-wise
  variant, :func:`mean_aggregation`): ``GK = mean_i k_i``. Or any function
  ``aggregate(pooled, kernel_bank, dot_scale) -> (t*t,)``, e.g. a softmax
  over the items.

  Args:
    pooled: ``(m,)`` item summaries (Eq. 4: :func:`item_average_pooling`,
      or another pooling, :data:`POOLINGS`).
    kernel_bank: ``(m, t * t)`` one flattened ``t x t`` kernel per item; ``t``
      odd.
    dot_scale: scale of the weighted sum (docs/model.md: 1 / 0.5 / 2 for
      ML-100K / ML-1M / Douban).
    aggregation: a name of :data:`AGGREGATIONS` or a function.

  Returns:
    ``(t, t)`` global convolution kernel.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> from glocal_jax import kernels
    >>> bank = jnp.arange(18.0).reshape(2, 9)
    >>> kernels.global_kernel(jnp.array([1.0, 0.0]), bank).shape
    (3, 3)
    >>> softmax = lambda pooled, bank, scale: jax.nn.softmax(pooled) @ bank
    >>> float(kernels.global_kernel(jnp.zeros(2), bank, 1.0, softmax)[0, 0])
    4.5
  """
  size = kernel_bank.shape[-1]
  t = int(round(size ** 0.5))
  if t * t != size:
    raise ValueError(f"kernel_bank has {size} columns, not a square t*t.")
  flat = aggregation_fn(aggregation)(pooled, kernel_bank, dot_scale)
  return flat.reshape(t, t)


def _correlate(x: jax.Array, kernel: jax.Array, row_pad: int) -> jax.Array:
  """``out[i, j] = sum_ab K[a, b] * xp[i + a, j + b]``: ``x`` zero-padded by
  ``row_pad`` rows and ``t // 2`` columns, VALID over the padded array, as
  ``t * t`` shifted, scaled copies (XLA fuses them into one pass)."""
  t = kernel.shape[0]
  half = t // 2
  padded = jnp.pad(x, ((row_pad, row_pad), (half, half)))
  rows = x.shape[0] + 2 * row_pad - 2 * half
  out = jnp.zeros((rows, x.shape[1]), x.dtype)
  for a in range(t):
    for b in range(t):
      out = out + kernel[a, b] * padded[a:a + rows, b:b + x.shape[1]]
  return out


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _global_correlate(x: jax.Array, kernel: jax.Array,
                      row_pad: int) -> jax.Array:
  return _correlate(x, kernel, row_pad)


def _global_correlate_fwd(x, kernel, row_pad):
  return _correlate(x, kernel, row_pad), (x, kernel)


def _global_correlate_bwd(row_pad, residuals, g):
  x, kernel = residuals
  half = kernel.shape[0] // 2
  # The input gradient is the correlation of g with the flipped kernel,
  # padded so that every output position that read x[p, q] is visited.
  dx = _correlate(g, kernel[::-1, ::-1], 2 * half - row_pad)
  padded = jnp.pad(x, ((row_pad, row_pad), (half, half)))
  dkernel = jax.lax.conv_general_dilated(
      padded[None, None], g[None, None], (1, 1), "VALID",
      precision=jax.lax.Precision.HIGHEST)[0, 0]
  return dx, dkernel.astype(kernel.dtype)


_global_correlate.defvjp(_global_correlate_fwd, _global_correlate_bwd)


def global_conv(ratings: jax.Array, kernel: jax.Array,
                row_padding: bool = True) -> jax.Array:
  """Global kernel-based rating matrix, paper Eq. (6): ``relu(R (*) GK)``.

  A single-channel 2-D convolution (cross-correlation, as ``tf.nn.conv2d``)
  over the items x users matrix, stride 1, SAME zero padding, then ReLU:
  ``out[i, j] = relu(sum_ab GK[a, b] * R[i + a - t//2, j + b - t//2])``.

  The convolution and the gradient with respect to ``R`` are ``t * t``
  shifted, scaled copies, fused by XLA into one pass each; only the ``t x t``
  kernel gradient uses ``lax.conv_general_dilated`` (faster on the CPU than
  the convolution op throughout, and plain autodiff of the shifted copies
  compiles badly for stacked large kernels; docs/scaling.md measures both).

  Args:
    ratings: ``(m, n)`` rating matrix.
    kernel: ``(t, t)`` global kernel, ``t`` odd.
    row_padding: False makes the item axis VALID instead of SAME: the
      caller supplies ``t // 2`` halo rows above and below (a block of
      items), and gets ``m - 2 * (t // 2)`` rows back.

  Returns:
    ``(m, n)`` convolved, rectified matrix (fewer rows without
    ``row_padding``).
  """
  row_pad = kernel.shape[0] // 2 if row_padding else 0
  return jax.nn.relu(_global_correlate(ratings,
                                       kernel.astype(ratings.dtype), row_pad))
