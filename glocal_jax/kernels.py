"""Local and global kernels of GLocal-K (paper Section 2, Eqs. 2-6).

Every function here is pure and works under ``jax.jit``, ``jax.grad`` and
``jax.vmap``. Shapes follow the paper: the rating matrix is ``(m, n)``, items
by users.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

Aggregation = Literal["weighted", "mean"]
AGGREGATIONS: tuple[str, ...] = ("weighted", "mean")


def local_kernel(u: jax.Array, v: jax.Array) -> jax.Array:
  """Finite-support RBF kernel, paper Eq. (2).

  ``K_ij = max(0, 1 - ||u_i - v_j||_2^2)``.

  Args:
    u: ``(n_in, 1, d)`` input-side embeddings (``(n_in, d)`` also works with
      ``v`` of shape ``(n_out, d)`` after adding the broadcast axes yourself).
    v: ``(1, n_out, d)`` output-side embeddings.

  Returns:
    ``(n_in, n_out)`` kernel matrix with entries in ``[0, 1]``.
  """
  sq_dist = jnp.sum(jnp.square(u - v), axis=-1)
  return jnp.maximum(0.0, 1.0 - sq_dist)


def kernelised_weight(w: jax.Array, u: jax.Array, v: jax.Array) -> jax.Array:
  """Local kernelised weight matrix, paper Eq. (3): ``W' = W * K(U, V)``.

  Args:
    w: ``(n_in, n_out)`` dense weights.
    u: ``(n_in, 1, d)`` input-side embeddings.
    v: ``(1, n_out, d)`` output-side embeddings.

  Returns:
    ``(n_in, n_out)`` sparsified weights.
  """
  return w * local_kernel(u, v)


def item_average_pooling(predictions: jax.Array) -> jax.Array:
  """Item-based average pooling, paper Eq. (4): ``mu_i = mean_j R'_ij``.

  Args:
    predictions: ``(m, n)`` decoder output, items by users.

  Returns:
    ``(m,)`` one summary per item.
  """
  return jnp.mean(predictions, axis=1)


def global_kernel(pooled: jax.Array, kernel_bank: jax.Array,
                  dot_scale: float | jax.Array = 1.0,
                  aggregation: Aggregation = "weighted") -> jax.Array:
  """Aggregates the kernel bank into one global kernel, paper Eq. (5).

  ``"weighted"`` (the paper's): ``GK = dot_scale * sum_i mu_i k_i``.
  ``"mean"`` (Table 2's element-wise variant): ``GK = mean_i k_i``; the
  pooled predictions and ``dot_scale`` are not used.

  Args:
    pooled: ``(m,)`` item summaries from :func:`item_average_pooling`.
    kernel_bank: ``(m, t * t)`` one flattened ``t x t`` kernel per item; ``t``
      odd.
    dot_scale: scale of the weighted sum (SPEC: 1 / 0.5 / 2 for ML-100K /
      ML-1M / Douban).
    aggregation: ``"weighted"`` or ``"mean"``.

  Returns:
    ``(t, t)`` global convolution kernel.
  """
  size = kernel_bank.shape[-1]
  t = int(round(size ** 0.5))
  if t * t != size:
    raise ValueError(f"kernel_bank has {size} columns, not a square t*t.")
  if aggregation == "weighted":
    flat = (pooled @ kernel_bank) * dot_scale
  elif aggregation == "mean":
    flat = jnp.mean(kernel_bank, axis=0)
  else:
    raise ValueError(
        f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}.")
  return flat.reshape(t, t)


def global_conv(ratings: jax.Array, kernel: jax.Array) -> jax.Array:
  """Global kernel-based rating matrix, paper Eq. (6): ``relu(R (*) GK)``.

  A single-channel 2-D convolution (cross-correlation, as ``tf.nn.conv2d``)
  over the items x users matrix, stride 1, SAME zero padding, then ReLU.

  Args:
    ratings: ``(m, n)`` rating matrix.
    kernel: ``(t, t)`` global kernel, ``t`` odd.

  Returns:
    ``(m, n)`` convolved, rectified matrix.
  """
  out = jax.lax.conv_general_dilated(
      ratings[None, None, :, :],
      kernel[None, None, :, :].astype(ratings.dtype),
      window_strides=(1, 1),
      padding="SAME",
      dimension_numbers=("NCHW", "OIHW", "NCHW"))
  return jax.nn.relu(out[0, 0])
