"""Using a trained model: rating predictions and top-k recommendations."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def predict_pairs(predictions: jax.Array, items: jax.Array, users: jax.Array,
                  min_rating: float = 1.0, max_rating: float = 5.0
                  ) -> jax.Array:
  """Clipped predicted ratings of ``(item, user)`` index pairs.

  Args:
    predictions: ``(m, n)`` model output (e.g.
      :func:`glocal_jax.training.predictions`).
    items: ``(p,)`` row indices.
    users: ``(p,)`` column indices.

  Returns:
    ``(p,)`` ratings in ``[min_rating, max_rating]``.
  """
  return jnp.clip(predictions[items, users], min_rating, max_rating)


def top_k_unrated(predictions: jax.Array, ratings: jax.Array, user: int,
                  k: int, min_rating: float = 1.0, max_rating: float = 5.0
                  ) -> tuple[jax.Array, jax.Array]:
  """The ``k`` items a user has not rated with the highest predictions.

  Args:
    predictions: ``(m, n)`` model output.
    ratings: ``(m, n)`` known ratings (0 = unrated); rated items are skipped.
    user: column index of the user.
    k: how many items (at most the number of unrated items).

  Returns:
    ``(items, scores)``: ``(k,)`` row indices, best first, and their clipped
    predicted ratings (ties: lower index first).
  """
  scores = jnp.clip(predictions[:, user], min_rating, max_rating)
  scores = jnp.where(ratings[:, user] > 0, -jnp.inf, scores)
  values, items = jax.lax.top_k(scores, k)
  return items, values
