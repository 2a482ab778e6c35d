"""Sparse formulation: work proportional to the observed entries.

The same three products as :mod:`glocal_jax.blocked`, computed at the
entries that are non-zero:

* :func:`matmul`: ``S @ W`` for a sparse ``(m, n)`` matrix ``S`` given as
  triplets, ``O(nnz * h)`` (the first layer on ``R``, or on ``R_hat``);
* :func:`output_loss`: the output layer only at the observed entries,
  ``pred_k = H[item_k] . W[:, user_k] + b[user_k]`` (a sampled product),
  ``O(nnz * h)``;
* :func:`conv_values`: ``R_hat`` (Eq. 6) on its support, the observed
  entries grown by the ``t x t`` window, from a precomputed index structure
  (:func:`make_support`), ``O(t^2 * nnz_hat)``.

Entries are processed in chunks of ``C`` (a ``lax.scan``), so no
``(nnz, h)`` array is formed: memory is ``O(C * h + m * h + n * h)`` on top
of the triplets. Gradients come from custom VJPs that are sparse products
themselves (``S^T dZ``, and the sampled product at the entries for the
values), so nothing of size ``(nnz, h)`` is saved for the backward pass.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from glocal_jax.ratings import Ratings


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["items", "users", "values"],
                   meta_fields=["shape"])
@dataclasses.dataclass(frozen=True)
class Chunks:
  """Triplets sorted by item, in chunks of equal size.

  Attributes:
    items, users: ``(n_chunks, C)`` int32 indices.
    values: ``(n_chunks, C)`` float32 values; 0 on padding.
    shape: ``(m, n)``.
  """
  items: Any
  users: Any
  values: Any
  shape: tuple[int, int]


def make_chunks(ratings: Ratings, chunk_size: int) -> Chunks:
  """Splits sorted triplets into ``(n_chunks, chunk_size)`` (on the host).

  The last chunk is padded with zero values at the last cell, which keeps
  the item order and adds nothing.
  """
  if chunk_size <= 0:
    raise ValueError(f"chunk_size must be positive, got {chunk_size}.")
  host = ratings.to_host()
  m, n = ratings.shape
  size = max(host.nnz, 1)
  chunk_size = min(chunk_size, size)
  extra = -size % chunk_size + (size - host.nnz)

  def padded(x, fill):
    x = np.concatenate([x, np.full(extra, fill, x.dtype)])
    return x.reshape(-1, chunk_size)

  return Chunks(padded(host.items, m - 1), padded(host.users, n - 1),
                padded(host.values, 0), ratings.shape)


# --- S @ W ---

def _spmm(items, users, values, w, m):
  def add_chunk(z, xs):
    i, u, v = xs
    return z.at[i].add(w[u] * v[:, None].astype(w.dtype),
                       indices_are_sorted=True), None

  z, _ = jax.lax.scan(add_chunk, jnp.zeros((m, w.shape[1]), w.dtype),
                      (items, users, values))
  return z


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _matmul(items, users, values, w, m):
  return _spmm(items, users, values, w, m)


def _matmul_fwd(items, users, values, w, m):
  return _spmm(items, users, values, w, m), (items, users, values, w)


def _matmul_bwd(m, residuals, dz):
  del m
  items, users, values, w = residuals

  def chunk(dw, xs):
    i, u, v = xs
    dz_i = dz[i]
    dw = dw.at[u].add(dz_i * v[:, None].astype(w.dtype))
    return dw, jnp.sum(dz_i * w[u], axis=1).astype(values.dtype)

  dw, dvalues = jax.lax.scan(chunk, jnp.zeros_like(w), (items, users, values))
  return None, None, dvalues, dw


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def matmul(chunks: Chunks, w: jax.Array,
           values: jax.Array | None = None) -> jax.Array:
  """``S @ w`` for the sparse matrix ``S`` of ``chunks``: ``(m, h)``.

  Args:
    chunks: the entries of ``S``.
    w: ``(n, h)`` dense right-hand side.
    values: optional ``(n_chunks, C)`` values replacing ``chunks.values``
      (e.g. ``R_hat`` on its support, which depends on parameters).

  Returns:
    ``(m, h)``; differentiable in ``w`` and ``values``.
  """
  values = chunks.values if values is None else values
  return _matmul(chunks.items, chunks.users, values, w, chunks.shape[0])


# --- Sampled output layer. ---

def _sampled(h, wt, bias, i, u):
  """Predictions at entries ``(i, u)`` and the rows they read."""
  h_i, w_u = h[i], wt[u]
  return jnp.sum(h_i * w_u, axis=1) + bias[u], h_i, w_u


def predict_at(h: jax.Array, w: jax.Array, bias: jax.Array,
               items: jax.Array, users: jax.Array,
               chunk_size: int = 4096) -> jax.Array:
  """Output-layer predictions ``h[items] . w[:, users] + bias[users]``.

  Args:
    h: ``(m, h)`` last hidden layer.
    w: ``(h, n)`` kernelised output weights.
    bias: ``(n,)`` output bias.
    items, users: ``(k,)`` entries to predict.
    chunk_size: entries per chunk.

  Returns:
    ``(k,)`` unclipped predictions, without forming ``(m, n)`` or
    ``(k, h)``.
  """
  k = items.shape[0]
  chunk_size = max(1, min(chunk_size, k))
  extra = -k % chunk_size
  i = jnp.pad(items, (0, extra)).reshape(-1, chunk_size)
  u = jnp.pad(users, (0, extra)).reshape(-1, chunk_size)
  wt = w.T
  pred = jax.lax.map(lambda xs: _sampled(h, wt, bias, *xs)[0], (i, u))
  return pred.reshape(-1)[:k]


def _counted(i, v, rows):
  """Which entries count: ratings of items in ``[rows[0], rows[1])``."""
  return (v > 0) & (i >= rows[0]) & (i < rows[1])


@jax.custom_vjp
def output_loss(chunks: Chunks, h: jax.Array, w: jax.Array,
                bias: jax.Array, rows: jax.Array) -> jax.Array:
  """``sum over observed (r_k - pred_k)^2 / 2`` at the entries of ``chunks``.

  Args:
    chunks: the observed training triplets.
    h: ``(m, h)`` last hidden layer.
    w: ``(h, n)`` kernelised output weights.
    bias: ``(n,)`` output bias.
    rows: ``(2,)`` int: only the ratings of items in ``[rows[0], rows[1])``
      count (a device's own items when the matrix is sharded).

  Returns:
    scalar; differentiable in ``h``, ``w`` and ``bias`` (the gradients are
    accumulated in the same pass as the loss).
  """
  wt = w.T

  def chunk(xs):
    i, u, v = xs
    pred = _sampled(h, wt, bias, i, u)[0]
    return jnp.sum(jnp.square(jnp.where(_counted(i, v, rows), pred - v,
                                        0.0))) / 2

  return jnp.sum(jax.lax.map(chunk, (chunks.items, chunks.users,
                                     chunks.values)))


def _output_loss_fwd(chunks, h, w, bias, rows):
  wt = w.T

  def chunk(carry, xs):
    loss, dh, dwt, dbias = carry
    i, u, v = xs
    pred, h_i, w_u = _sampled(h, wt, bias, i, u)
    err = jnp.where(_counted(i, v, rows), pred - v.astype(pred.dtype), 0.0)
    return (loss + jnp.sum(jnp.square(err)) / 2,
            dh.at[i].add(err[:, None] * w_u, indices_are_sorted=True),
            dwt.at[u].add(err[:, None] * h_i), dbias.at[u].add(err)), None

  init = (jnp.zeros((), w.dtype), jnp.zeros_like(h), jnp.zeros_like(wt),
          jnp.zeros_like(bias))
  (loss, dh, dwt, dbias), _ = jax.lax.scan(
      chunk, init, (chunks.items, chunks.users, chunks.values))
  return loss, (dh, dwt.T, dbias)


def _output_loss_bwd(grads, g):
  return (None, *(g * x for x in grads), None)


output_loss.defvjp(_output_loss_fwd, _output_loss_bwd)


# --- The global convolution on its support. ---

@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["neighbours", "chunks"],
                   meta_fields=["sizes"])
@dataclasses.dataclass(frozen=True)
class Support:
  """Where the stacked ``t x t`` convolutions of ``R`` can be non-zero.

  Layer ``l``'s support ``S_l`` is ``S_{l-1}`` (``S_0``: the observed
  entries) grown by the ``t x t`` window, inside the matrix; outside it the
  convolution of Eq. 6 only sees zeros, so ``R_hat`` is 0 there.

  Attributes:
    neighbours: one ``(|S_l|, t * t)`` int32 array per layer: for each
      position of ``S_l`` and each kernel offset ``(a, b)`` (flattened
      row-major), the index of the position ``(i + a - t//2, u + b - t//2)``
      in ``S_{l-1}``, or ``|S_{l-1}|`` when that position is not in
      ``S_{l-1}`` (it reads a zero). The last layer is padded to a whole
      number of chunks with rows that read zeros only.
    chunks: the last layer's positions as :class:`Chunks` (values unused).
    sizes: ``(|S_1|, ..., |S_L|)`` (static).
  """
  neighbours: tuple[Any, ...]
  chunks: Chunks
  sizes: tuple[int, ...]


def _grow(keys: np.ndarray, shape: tuple[int, int], half: int) -> np.ndarray:
  """Sorted cell keys ``i * n + u`` of ``keys`` grown by the window."""
  m, n = shape
  rows, cols = np.divmod(keys, n)
  grown = []
  for da in range(-half, half + 1):
    for db in range(-half, half + 1):
      r, c = rows + da, cols + db
      ok = (r >= 0) & (r < m) & (c >= 0) & (c < n)
      grown.append(r[ok] * n + c[ok])
  return np.unique(np.concatenate(grown))


def _neighbours(keys: np.ndarray, previous: np.ndarray,
                shape: tuple[int, int], t: int,
                batch: int = 1 << 22) -> np.ndarray:
  """``(len(keys), t * t)`` indices of each window cell in ``previous``."""
  m, n = shape
  half = t // 2
  out = np.empty((keys.size, t * t), np.int32)
  for lo in range(0, keys.size, batch):
    rows, cols = np.divmod(keys[lo:lo + batch], n)
    for a in range(t):
      for b in range(t):
        r, c = rows + a - half, cols + b - half
        inside = (r >= 0) & (r < m) & (c >= 0) & (c < n)
        q = r * n + c
        pos = np.searchsorted(previous, q)
        found = inside & (pos < previous.size)
        found[found] &= previous[pos[found]] == q[found]
        out[lo:lo + batch, a * t + b] = np.where(found, pos, previous.size)
  return out


def make_support(ratings: Ratings, kernel_size: int, conv_layers: int,
                 chunk_size: int) -> Support:
  """Builds the convolution's index structure (on the host).

  ``O(t^2 * |S|)`` time and memory for ``|S|`` the largest support; with
  independent positions at density ``d`` one layer's support holds about
  ``1 - (1 - d)^(t^2)`` of the cells (37% at ML-100K's density).
  """
  if kernel_size <= 0 or kernel_size % 2 == 0 or conv_layers <= 0:
    raise ValueError(f"kernel_size must be odd and conv_layers positive, got "
                     f"{kernel_size} and {conv_layers}.")
  host = ratings.to_host()
  m, n = ratings.shape
  # Padding entries (value 0, at the last cell) may repeat a key: they read
  # as zeros and at most add the last cell's window to the support.
  keys = host.items.astype(np.int64) * n + host.users
  neighbours, sizes = [], []
  for _ in range(conv_layers):
    grown = _grow(keys, (m, n), kernel_size // 2)
    neighbours.append(_neighbours(grown, keys, (m, n), kernel_size))
    sizes.append(int(grown.size))
    keys = grown
  positions = Ratings((keys // n).astype(np.int32),
                      (keys % n).astype(np.int32),
                      np.ones(keys.size, np.float32), (m, n))
  chunks = make_chunks(positions, chunk_size)
  extra = chunks.items.size - keys.size
  neighbours[-1] = np.concatenate(
      [neighbours[-1], np.full((extra, kernel_size ** 2),
                               neighbours[-2].shape[0] if conv_layers > 1
                               else host.nnz, np.int32)])
  return Support(tuple(neighbours), chunks, tuple(sizes))


def conv_values(support: Support, observed: jax.Array,
                global_kernels: Sequence[jax.Array]) -> jax.Array:
  """``R_hat`` (Eq. 6, stacked) on the last layer's support.

  Args:
    support: from :func:`make_support` on the same ratings.
    observed: ``(k,)`` the values of the ratings the support was built from,
      in their order (padding entries included).
    global_kernels: ``(t, t)`` kernels, applied in order.

  Returns:
    ``(n_chunks, C)`` values at ``support.chunks``' positions.
  """
  # In the wider of the ratings' and the kernels' dtypes (float64
  # parameters make float32 ratings as exact as the dense model).
  x = observed.astype(jnp.result_type(observed, *global_kernels))
  for neighbours, kernel in zip(support.neighbours, global_kernels):
    x = jnp.concatenate([x, jnp.zeros((1,), x.dtype)])
    x = jax.nn.relu(x[neighbours] @ kernel.reshape(-1).astype(x.dtype))
  return x.reshape(support.chunks.items.shape)


def pad_support(support: Support, sizes: Sequence[int], positions: int,
                chunk_size: int, n_observed: int) -> Support:
  """``support`` padded to ``sizes`` positions per layer, its last layer to
  ``positions`` positions in chunks of ``chunk_size`` (host), with rows that
  read zeros only: the same values, and the static shapes of another
  device's support. ``n_observed``: the number of ratings it was built from
  (padding included)."""
  chunks = support.chunks
  m, n = chunks.shape
  neighbours = []
  previous = n_observed
  for layer, (array, size) in enumerate(zip(support.neighbours, sizes)):
    array = np.asarray(array)
    rows = positions if layer == len(sizes) - 1 else size
    # A padding row reads position ``len(previous layer)``: the zero that
    # conv_values appends after it.
    pad = np.full((rows - array.shape[0], array.shape[1]), previous, np.int32)
    neighbours.append(np.concatenate([array, pad]))
    previous = neighbours[-1].shape[0]

  def grow(x, fill):
    x = np.asarray(x).reshape(-1)
    return np.concatenate([x, np.full(positions - x.size, fill, x.dtype)]
                          ).reshape(-1, chunk_size)

  return Support(tuple(neighbours),
                 Chunks(grow(chunks.items, m - 1), grow(chunks.users, n - 1),
                        grow(chunks.values, 0), chunks.shape),
                 tuple(int(s) for s in sizes))
