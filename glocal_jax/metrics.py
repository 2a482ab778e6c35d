"""Evaluation metrics of the reference code (SPEC, Evaluation), on triplets.

Every metric takes ``predictions``, a ``(k,)`` vector of predicted ratings
at the entries of ``targets`` (a :class:`~glocal_jax.ratings.Ratings`, e.g.
the test set), so no ``(m, n)`` matrix is needed; for a dense prediction
matrix ``P`` pass ``targets.gather(P)``. Predictions are clipped to
``[min_rating, max_rating]`` (default [1, 5]) before every metric; padding
entries of ``targets`` (value 0) are ignored. All functions jit and vmap.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from glocal_jax.ratings import Ratings


def _clipped_errors(predictions, targets, min_rating, max_rating):
  mask = targets.mask
  clipped = jnp.clip(predictions, min_rating, max_rating)
  return mask * (clipped - targets.values), jnp.sum(mask)


def rmse(predictions: jax.Array, targets: Ratings, min_rating: float = 1.0,
         max_rating: float = 5.0) -> jax.Array:
  """Root mean squared error: ``(k,)`` predictions at ``targets`` -> scalar."""
  err, count = _clipped_errors(predictions, targets, min_rating, max_rating)
  return jnp.sqrt(jnp.sum(jnp.square(err)) / count)


def mae(predictions: jax.Array, targets: Ratings, min_rating: float = 1.0,
        max_rating: float = 5.0) -> jax.Array:
  """Mean absolute error: ``(k,)`` predictions at ``targets`` -> scalar."""
  err, count = _clipped_errors(predictions, targets, min_rating, max_rating)
  return jnp.sum(jnp.abs(err)) / count


def ndcg(predictions: jax.Array, targets: Ratings, min_rating: float = 1.0,
         max_rating: float = 5.0) -> jax.Array:
  """Mean per-user NDCG over each user's entries in ``targets``.

  For each user: rank that user's target items by clipped predicted rating,
  descending; ties keep item order (the reference's stable sort); gain
  ``2^r - 1``, discount ``log2(2 + rank)`` (rank from 0), cut-off the
  number of the user's target items. Users with fewer than 2 target items
  are skipped; the result is the mean over the others. One sort of the
  ``k`` entries by (user, score, item): ``O(k log k)``.

  Args:
    predictions: ``(k,)`` predicted ratings at the entries of ``targets``.
    targets: the true ratings.

  Returns:
    scalar NDCG (NaN when no user has 2 or more target items).
  """
  mask = targets.values > 0
  users = targets.users
  n_users = targets.shape[1]
  scores = jnp.where(mask, jnp.clip(predictions, min_rating, max_rating),
                     -jnp.inf)
  gains = jnp.where(mask, jnp.exp2(targets.values) - 1.0, 0.0)
  by_score = jnp.lexsort((targets.items, -scores, users))
  by_gain = jnp.lexsort((-gains, users))
  # Both orders group the entries by user: rank = position - group start.
  sizes = jnp.zeros(n_users, jnp.int32).at[users].add(1)
  group_start = jnp.cumsum(sizes) - sizes
  sorted_users = users[by_score]
  rank = jnp.arange(users.shape[0]) - group_start[sorted_users]
  discount = 1.0 / jnp.log2(2.0 + rank)
  per_user = lambda g: jnp.zeros(n_users, g.dtype).at[sorted_users].add(
      g * discount)
  dcg, idcg = per_user(gains[by_score]), per_user(gains[by_gain])
  valid = jnp.zeros(n_users, jnp.int32).at[users].add(mask) >= 2
  ratio = jnp.where(valid, dcg / jnp.where(valid, idcg, 1.0), 0.0)
  return jnp.sum(ratio) / jnp.sum(valid)


def item_spread(predictions: jax.Array, targets: Ratings) -> jax.Array:
  """How much the predictions vary across items for a user: the root mean
  square, over the entries of ``targets``, of each prediction's distance
  from the mean prediction of its user.

  0 when a model predicts one value per user whatever the item (a
  collapsed autoencoder whose hidden code no longer depends on its input,
  which ranks every user's items alike). Padding entries are ignored.
  """
  mask = targets.mask
  n_users = targets.shape[1]
  count = jnp.zeros(n_users).at[targets.users].add(mask)
  total = jnp.zeros(n_users).at[targets.users].add(mask * predictions)
  mean = (total / jnp.maximum(count, 1.0))[targets.users]
  return jnp.sqrt(jnp.sum(mask * jnp.square(predictions - mean))
                  / jnp.maximum(jnp.sum(mask), 1.0))


@jax.jit
def evaluate(predictions: jax.Array, targets: Ratings,
             min_rating: float = 1.0,
             max_rating: float = 5.0) -> dict[str, jax.Array]:
  """``{"rmse", "mae", "ndcg"}`` of ``(k,)`` predictions at ``targets``,
  clipped to ``[min_rating, max_rating]``."""
  return {"rmse": rmse(predictions, targets, min_rating, max_rating),
          "mae": mae(predictions, targets, min_rating, max_rating),
          "ndcg": ndcg(predictions, targets, min_rating, max_rating)}
