"""Evaluation metrics of the reference code (SPEC, Evaluation).

Predictions are clipped to ``[min_rating, max_rating]`` (default [1, 5])
before every metric. All functions take ``(m, n)`` items x users matrices
and are vectorised (no Python loop over users), so they jit and vmap.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _clipped_errors(predictions, targets, mask, min_rating, max_rating):
  clipped = jnp.clip(predictions, min_rating, max_rating)
  return mask * (clipped - targets), jnp.sum(mask)


def rmse(predictions: jax.Array, targets: jax.Array, mask: jax.Array,
         min_rating: float = 1.0, max_rating: float = 5.0) -> jax.Array:
  """Root mean squared error over ``mask``, ``(m, n)`` inputs -> scalar."""
  err, count = _clipped_errors(predictions, targets, mask, min_rating,
                               max_rating)
  return jnp.sqrt(jnp.sum(jnp.square(err)) / count)


def mae(predictions: jax.Array, targets: jax.Array, mask: jax.Array,
        min_rating: float = 1.0, max_rating: float = 5.0) -> jax.Array:
  """Mean absolute error over ``mask``, ``(m, n)`` inputs -> scalar."""
  err, count = _clipped_errors(predictions, targets, mask, min_rating,
                               max_rating)
  return jnp.sum(jnp.abs(err)) / count


def ndcg(predictions: jax.Array, targets: jax.Array, mask: jax.Array,
         min_rating: float = 1.0, max_rating: float = 5.0) -> jax.Array:
  """Mean per-user NDCG over each user's masked (test) items.

  For each user (column): rank that user's masked items by clipped predicted
  rating, descending; ties keep item order (the reference's stable sort);
  gain ``2^r - 1``, discount ``log2(2 + rank)`` (rank from 0), cut-off the
  number of the user's masked items. Users with fewer than 2 masked items
  are skipped; the result is the mean over the others.

  Args:
    predictions: ``(m, n)`` predicted ratings.
    targets: ``(m, n)`` true ratings.
    mask: ``(m, n)`` 1 where the rating is evaluated.

  Returns:
    scalar NDCG (NaN when no user has 2 or more masked items).
  """
  mask = mask > 0
  scores = jnp.where(mask, jnp.clip(predictions, min_rating, max_rating),
                     -jnp.inf)
  gains = jnp.where(mask, jnp.exp2(targets) - 1.0, 0.0)
  order = jnp.argsort(-scores, axis=0, stable=True)
  discounts = 1.0 / jnp.log2(2.0 + jnp.arange(gains.shape[0]))[:, None]
  dcg = jnp.sum(jnp.take_along_axis(gains, order, axis=0) * discounts, axis=0)
  idcg = jnp.sum(-jnp.sort(-gains, axis=0) * discounts, axis=0)
  valid = jnp.sum(mask, axis=0) >= 2
  per_user = jnp.where(valid, dcg / jnp.where(valid, idcg, 1.0), 0.0)
  return jnp.sum(per_user) / jnp.sum(valid)


@jax.jit
def evaluate(predictions: jax.Array, targets: jax.Array,
             mask: jax.Array) -> dict[str, jax.Array]:
  """``{"rmse", "mae", "ndcg"}`` of ``(m, n)`` predictions on [1, 5] ratings."""
  return {"rmse": rmse(predictions, targets, mask),
          "mae": mae(predictions, targets, mask),
          "ndcg": ndcg(predictions, targets, mask)}
