"""Blocked-dense formulation: items in blocks of ``B`` rows, dense inside.

GLocal-K's heavy work is three products per loss evaluation, each
``O(m * n * h)``: the first layer on ``R`` (for the item pooling, Eq. 4), the
first layer on ``R_hat`` (Eq. 6), and the output layer at the observed
entries. Here each runs over blocks of ``B`` consecutive items: a block's
``(B, n)`` ratings are scattered from the sorted triplets on the fly, so
memory is ``O(B * n + m * h + parameters)`` instead of ``O(m * n)``, and
inside a block everything is a dense matmul (tensor-core and AVX friendly).

Gradients are accumulated block by block through custom VJPs, so nothing of
size ``(m, n)`` is ever saved for the backward pass and no forward product is
recomputed: a pre-training evaluation costs 5 and a fine-tuning evaluation 8
``(m, n, h)`` matmuls, the same as the dense path (see
:func:`glocal_jax.flops.per_evaluation`).

The ``t x t`` convolution of a block needs the ``t // 2`` rows above and
below it (``conv_layers * (t // 2)`` for stacked convolutions): a block is
scattered with those halo rows and convolved with VALID rows, SAME users,
and rows outside the matrix are zeroed after every layer, as SAME padding
of the whole matrix does.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from glocal_jax import kernels
from glocal_jax.ratings import Ratings


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["items", "users", "values", "starts",
                                "halo_starts"],
                   meta_fields=["shape", "block_size", "halo", "window",
                                "halo_window"])
@dataclasses.dataclass(frozen=True)
class Blocks:
  """Sorted training triplets, indexed by blocks of items.

  Attributes:
    items, users, values: ``(k + pad,)`` the triplets, padded at the end so
      that a window of ``max(window, halo_window)`` entries from any start
      stays inside the arrays.
    starts: ``(n_blocks,)`` index of the first entry with
      ``item >= b * block_size``.
    halo_starts: ``(n_blocks,)`` index of the first entry with
      ``item >= b * block_size - halo``.
    shape: ``(m, n)``.
    block_size: ``B``, items per block.
    halo: extra rows above and below a block for the convolution.
    window: most entries in one block's rows (static).
    halo_window: most entries in one block's rows with halos (static).
  """
  items: Any
  users: Any
  values: Any
  starts: Any
  halo_starts: Any
  shape: tuple[int, int]
  block_size: int
  halo: int
  window: int
  halo_window: int

  @property
  def n_blocks(self) -> int:
    return -(-self.shape[0] // self.block_size)

  @property
  def padded_items(self) -> int:
    """``n_blocks * block_size`` (>= m)."""
    return self.n_blocks * self.block_size


def make_blocks(ratings: Ratings, block_size: int, halo: int = 0,
                window: int = 1, halo_window: int = 1) -> Blocks:
  """Indexes sorted triplets by blocks of ``block_size`` items (on the host).

  Args:
    ratings: training ratings, sorted by item (as :class:`Ratings` are).
    block_size: items per block, ``1 <= block_size``; a block of ``m`` or
      more items is one dense block.
    halo: rows of context above and below each block
      (``conv_layers * (kernel_size // 2)``).
    window, halo_window: at least these windows (to give the blocks of
      several devices the same static shapes).

  Returns:
    :class:`Blocks` with NumPy arrays.
  """
  m, n = ratings.shape
  if block_size <= 0 or halo < 0:
    raise ValueError(f"block_size must be positive and halo >= 0, got "
                     f"{block_size} and {halo}.")
  block_size = min(block_size, m)
  host = ratings.to_host()
  items = host.items.astype(np.int64)
  n_blocks = -(-m // block_size)
  first = np.arange(n_blocks) * block_size
  starts = np.searchsorted(items, first)
  ends = np.searchsorted(items, first + block_size)
  halo_starts = np.searchsorted(items, first - halo)
  halo_ends = np.searchsorted(items, first + block_size + halo)
  window = max(int(np.max(ends - starts)), window, 1)
  halo_window = max(int(np.max(halo_ends - halo_starts)), halo_window, 1)
  extra = max(window, halo_window)
  # Padding entries sit past every block (item index >= m + halo): dropped.
  pad_items = np.full(extra, m + halo + block_size, np.int32)
  return Blocks(
      np.concatenate([host.items, pad_items]),
      np.concatenate([host.users, np.zeros(extra, np.int32)]),
      np.concatenate([host.values, np.zeros(extra, host.values.dtype)]),
      starts.astype(np.int32), halo_starts.astype(np.int32), (m, n),
      block_size, halo, window, halo_window)


def block_matrix(blocks: Blocks, b: jax.Array, with_halo: bool = False,
                 dtype=jnp.float32) -> jax.Array:
  """The dense ratings of block ``b``, built from the triplets.

  Args:
    blocks: the indexed triplets.
    b: block number (traced).
    with_halo: include ``blocks.halo`` rows above and below.
    dtype: dtype of the matrix.

  Returns:
    ``(B, n)``, or ``(B + 2 * halo, n)`` with halos; rows outside the
    matrix are zero.
  """
  halo = blocks.halo if with_halo else 0
  window = blocks.halo_window if with_halo else blocks.window
  start = (blocks.halo_starts if with_halo else blocks.starts)[b]
  rows = blocks.block_size + 2 * halo
  first_row = b * blocks.block_size - halo
  take = lambda x: jax.lax.dynamic_slice(x, (start,), (window,))
  row = take(blocks.items) - first_row  # >= 0 by the choice of start
  row = jnp.where(row < rows, row, rows)  # past the block: dropped
  matrix = jnp.zeros((rows, blocks.shape[1]), dtype)
  return matrix.at[row, take(blocks.users)].add(
      take(blocks.values).astype(dtype), mode="drop")


def _to_blocks(x: jax.Array, blocks: Blocks) -> jax.Array:
  """``(m, h)`` rows -> ``(n_blocks, B, h)``, zero-padded."""
  pad = blocks.padded_items - x.shape[0]
  x = jnp.pad(x, ((0, pad), (0, 0)))
  return x.reshape(blocks.n_blocks, blocks.block_size, x.shape[1])


def _from_blocks(x: jax.Array, blocks: Blocks) -> jax.Array:
  """``(n_blocks, B, h)`` -> ``(m, h)``."""
  return x.reshape(blocks.padded_items, x.shape[-1])[:blocks.shape[0]]


def _block_ids(blocks: Blocks) -> jax.Array:
  return jnp.arange(blocks.n_blocks)


# --- First layer on R: Z = R @ W. ---

@jax.custom_vjp
def matmul(blocks: Blocks, w: jax.Array) -> jax.Array:
  """``R @ w`` block by block: ``(m, n) x (n, h) -> (m, h)``.

  Differentiable in ``w``; the gradient ``R^T dZ`` is accumulated over
  blocks (``R`` is data and gets no gradient).
  """
  return _from_blocks(jax.lax.map(
      lambda b: block_matrix(blocks, b, dtype=w.dtype) @ w,
      _block_ids(blocks)), blocks)


def _matmul_fwd(blocks, w):
  return matmul(blocks, w), (blocks, w)


def _matmul_bwd(residuals, dz):
  blocks, w = residuals

  def add_block(dw, xs):
    b, dz_b = xs
    return dw + block_matrix(blocks, b, dtype=w.dtype).T @ dz_b, None

  dw, _ = jax.lax.scan(add_block, jnp.zeros_like(w),
                       (_block_ids(blocks), _to_blocks(dz, blocks)))
  return None, dw


matmul.defvjp(_matmul_fwd, _matmul_bwd)


# --- First layer on R_hat: Z = relu(conv(...relu(conv(R, GK_1))...)) @ W. ---

def conv_block(blocks: Blocks, b: jax.Array,
               global_kernels: Sequence[jax.Array], dtype,
               valid_rows: jax.Array) -> jax.Array:
  """Block ``b`` of ``R_hat`` (Eq. 6, stacked for several kernels).

  Args:
    blocks: triplets indexed with ``halo = len(global_kernels) * (t // 2)``.
    b: block number.
    global_kernels: ``(t, t)`` kernels, applied in order.
    dtype: dtype of the result.
    valid_rows: rows ``>= valid_rows`` are outside the rating matrix (the
      padding of a device's share): zero after every layer, as SAME padding
      of the whole matrix makes them.

  Returns:
    ``(B, n)`` rows ``b * B ..`` of the global kernel-based rating matrix.
  """
  x = block_matrix(blocks, b, with_halo=True, dtype=dtype)
  first_row = b * blocks.block_size - blocks.halo
  for kernel in global_kernels:
    half = kernel.shape[0] // 2
    x = kernels.global_conv(x, kernel, row_padding=False)
    first_row = first_row + half
    row = first_row + jnp.arange(x.shape[0])
    x = jnp.where(((row >= 0) & (row < valid_rows))[:, None], x, 0.0)
  return x


@jax.custom_vjp
def conv_matmul(blocks: Blocks, global_kernels: tuple[jax.Array, ...],
                w: jax.Array, valid_rows: jax.Array) -> jax.Array:
  """``R_hat @ w`` block by block, ``R_hat`` built from ``global_kernels``.

  Differentiable in ``global_kernels`` and ``w``; per block the backward
  pass rebuilds ``R_hat_b`` (``O(t^2 B n)``), adds ``R_hat_b^T dZ_b`` to the
  weight gradient and back-propagates ``dZ_b w^T`` through the convolution.
  ``valid_rows``: see :func:`conv_block`.
  """
  return _from_blocks(jax.lax.map(
      lambda b: conv_block(blocks, b, global_kernels, w.dtype,
                           valid_rows) @ w, _block_ids(blocks)), blocks)


def _conv_matmul_fwd(blocks, global_kernels, w, valid_rows):
  return (conv_matmul(blocks, global_kernels, w, valid_rows),
          (blocks, global_kernels, w, valid_rows))


def _conv_matmul_bwd(residuals, dz):
  blocks, global_kernels, w, valid_rows = residuals

  def add_block(carry, xs):
    dw, dkernels = carry
    b, dz_b = xs
    r_hat, vjp = jax.vjp(
        lambda ks: conv_block(blocks, b, ks, w.dtype, valid_rows),
        global_kernels)
    (dk,) = vjp(dz_b @ w.T)
    return (dw + r_hat.T @ dz_b, jax.tree.map(jnp.add, dkernels, dk)), None

  init = (jnp.zeros_like(w), jax.tree.map(jnp.zeros_like, global_kernels))
  (dw, dkernels), _ = jax.lax.scan(
      add_block, init, (_block_ids(blocks), _to_blocks(dz, blocks)))
  return None, dkernels, dw, None


conv_matmul.defvjp(_conv_matmul_fwd, _conv_matmul_bwd)


# --- Output layer: 0.5 * sum over observed (R - (H W + b))^2. ---

def _output_block(blocks, b, h_b, w, bias, rows):
  """Residuals ``mask * (H_b W + b - R_b)`` of one block, ``(B, n)``, on the
  rows in ``[rows[0], rows[1])`` only."""
  x = block_matrix(blocks, b, dtype=w.dtype)
  row = b * blocks.block_size + jnp.arange(blocks.block_size)
  own = ((row >= rows[0]) & (row < rows[1]))[:, None]
  return jnp.where((x > 0) & own, h_b @ w + bias - x, 0.0)


@jax.custom_vjp
def output_loss(blocks: Blocks, h: jax.Array, w: jax.Array,
                bias: jax.Array, rows: jax.Array) -> jax.Array:
  """``sum((M * (R - (h @ w + bias)))^2) / 2`` block by block.

  Args:
    blocks: the indexed training triplets (``R`` and its mask ``M``).
    h: ``(m, h)`` last hidden layer.
    w: ``(h, n)`` kernelised output weights.
    bias: ``(n,)`` output bias.
    rows: ``(2,)`` int: only the ratings of items in ``[rows[0], rows[1])``
      count (a device's own items when the matrix is sharded).

  Returns:
    scalar; differentiable in ``h``, ``w`` and ``bias`` (the gradients are
    accumulated in the same pass as the loss).
  """
  def block_loss(xs):
    b, h_b = xs
    return jnp.sum(jnp.square(_output_block(blocks, b, h_b, w, bias,
                                            rows))) / 2

  return jnp.sum(jax.lax.map(block_loss,
                             (_block_ids(blocks), _to_blocks(h, blocks))))


def _output_loss_fwd(blocks, h, w, bias, rows):
  def add_block(carry, xs):
    loss, dw, dbias = carry
    b, h_b = xs
    err = _output_block(blocks, b, h_b, w, bias, rows)
    carry = (loss + jnp.sum(jnp.square(err)) / 2, dw + h_b.T @ err,
             dbias + jnp.sum(err, axis=0))
    return carry, err @ w.T

  init = (jnp.zeros((), w.dtype), jnp.zeros_like(w), jnp.zeros_like(bias))
  (loss, dw, dbias), dh = jax.lax.scan(
      add_block, init, (_block_ids(blocks), _to_blocks(h, blocks)))
  return loss, (_from_blocks(dh, blocks), dw, dbias)


def _output_loss_bwd(grads, g):
  return (None, *(g * x for x in grads), None)


output_loss.defvjp(_output_loss_fwd, _output_loss_bwd)
