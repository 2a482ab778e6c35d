"""Mean predictors: the trivial baselines a rating model has to beat.

Each predicts a rating from the observed training ratings alone: their
global mean, the item's mean or the user's mean. An item or user with no
training rating gets the global mean. They also tell a failed fit apart: an
item-based autoencoder whose hidden code no longer depends on its input can
only output one vector for every item, i.e. at best each user's mean rating
(RESULTS.md, "Collapsed seeds").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from glocal_jax.ratings import Ratings

MEAN_PREDICTORS: tuple[str, ...] = ("global", "item", "user")


def mean_predictions(train: Ratings, items: jax.Array, users: jax.Array,
                     by: str = "item") -> jax.Array:
  """Mean-rating predictions at ``(items, users)`` pairs.

  Args:
    train: training ratings (padding entries are ignored).
    items, users: ``(k,)`` the pairs to predict (e.g. the test entries).
    by: ``"global"``, ``"item"`` (row means) or ``"user"`` (column means).

  Returns:
    ``(k,)`` predictions. Traceable (jit, vmap); outside a trace ``train``
    without any rating raises ``ValueError``.
  """
  if by not in MEAN_PREDICTORS:
    raise ValueError(f"by must be one of {MEAN_PREDICTORS}, got {by!r}.")
  values = jnp.asarray(train.values, jnp.float32)
  mask = (values > 0).astype(jnp.float32)
  total = jnp.sum(mask)
  if not isinstance(total, jax.core.Tracer) and total == 0:
    raise ValueError("no observed training rating: nothing to average.")
  global_mean = jnp.sum(values) / total
  if by == "global":
    return jnp.full(jnp.shape(items), global_mean)
  index, size, at = ((train.items, train.shape[0], items) if by == "item"
                     else (train.users, train.shape[1], users))
  counts = jnp.zeros(size).at[index].add(mask)
  sums = jnp.zeros(size).at[index].add(values)
  means = jnp.where(counts > 0, sums / jnp.maximum(counts, 1.0), global_mean)
  return means[at]
