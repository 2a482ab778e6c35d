"""Mean predictors: the trivial baselines a rating model has to beat.

Each predicts every entry of the ``(m, n)`` items x users matrix from the
observed training ratings alone: their global mean, the item's mean (row) or
the user's mean (column). An item or user with no training rating gets the
global mean. They also tell a failed fit apart: an item-based autoencoder
whose hidden code no longer depends on its input can only output one vector
for every item, i.e. at best each user's mean rating (RESULTS.md, "Collapsed
seeds").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

MEAN_PREDICTORS: tuple[str, ...] = ("global", "item", "user")


def mean_predictions(ratings: jax.Array, mask: jax.Array,
                     by: str = "item") -> jax.Array:
  """Mean-rating predictions.

  Args:
    ratings: ``(m, n)`` training ratings (0 where unobserved).
    mask: ``(m, n)`` 1 where a training rating is observed.
    by: ``"global"``, ``"item"`` (row means) or ``"user"`` (column means).

  Returns:
    ``(m, n)`` predictions. Traceable (jit, vmap); outside a trace an empty
    ``mask`` raises ``ValueError``.
  """
  if by not in MEAN_PREDICTORS:
    raise ValueError(f"by must be one of {MEAN_PREDICTORS}, got {by!r}.")
  ratings = jnp.asarray(ratings, jnp.float32)
  mask = jnp.asarray(mask, jnp.float32)
  total = jnp.sum(mask)
  if not isinstance(total, jax.core.Tracer) and total == 0:
    raise ValueError("no observed training rating: nothing to average.")
  global_mean = jnp.sum(ratings * mask) / total
  if by == "global":
    return jnp.full(ratings.shape, global_mean)
  axis = 1 if by == "item" else 0
  counts = jnp.sum(mask, axis=axis, keepdims=True)       # (m, 1) or (1, n)
  sums = jnp.sum(ratings * mask, axis=axis, keepdims=True)
  means = jnp.where(counts > 0, sums / jnp.maximum(counts, 1.0), global_mean)
  return jnp.broadcast_to(means, ratings.shape)
