"""Using a trained model: top-k recommendations for a user.

Scores come from :func:`glocal_jax.predict` at one user's column (``(m,)``,
no ``(m, n)`` matrix), e.g. ``predict(config, params, data, phase,
users=jnp.full(m, user), items=jnp.arange(m))``;
:meth:`glocal_jax.TrainedModel.recommend` does it in a data set's ids.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def top_k_unrated(scores: jax.Array, rated: jax.Array, k: int,
                  min_rating: float = 1.0, max_rating: float = 5.0
                  ) -> tuple[jax.Array, jax.Array]:
  """The ``k`` items a user has not rated with the highest predictions.

  Args:
    scores: ``(m,)`` the user's predicted rating of every item.
    rated: ``(m,)`` True (or non-zero) where the user has a training
      rating; those items are skipped.
    k: how many items (at most the number of unrated items).

  Returns:
    ``(items, scores)``: ``(k,)`` item indices, best first, and their clipped
    predicted ratings (ties: lower index first).
  """
  scores = jnp.clip(scores, min_rating, max_rating)
  scores = jnp.where(jnp.asarray(rated) != 0, -jnp.inf, scores)
  values, items = jax.lax.top_k(scores, k)
  return items, values
