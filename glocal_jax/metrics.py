"""Evaluation metrics of the reference code (docs/model.md, Evaluation), on triplets.

Every metric takes ``predictions``, a ``(k,)`` vector of predicted ratings
at the entries of ``targets`` (a :class:`~glocal_jax.ratings.Ratings`, e.g.
the test set; for RMSE and MAE also a plain ``(k,)`` array of ratings), so
no ``(m, n)`` matrix is needed; for a dense prediction matrix ``P`` pass
``targets.gather(P)``. Padding entries of ``targets`` (value 0) are
ignored. All functions jit and vmap.

Clipping: the reference code clips predictions to the rating scale before
every metric. Pass the data's scale to do the same, e.g.
``rmse(pred, data.test, *data.scale.bounds)``; without bounds nothing is
clipped (no scale is assumed: a 1..5 clip on YahooMusic's 1..100 would be
silently wrong).

Examples:
  >>> import jax.numpy as jnp
  >>> from glocal_jax import metrics
  >>> from glocal_jax.ratings import from_triplets
  >>> test = from_triplets([0, 1, 1], [0, 0, 1], [4.0, 2.0, 5.0], (2, 2))
  >>> round(float(metrics.rmse(jnp.array([4.0, 3.0, 6.0]), test)), 4)
  0.8165
  >>> round(float(metrics.rmse(jnp.array([4.0, 3.0, 6.0]), test, 1, 5)), 4)
  0.5774
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from glocal_jax.ratings import Ratings

Bound = Optional[float]


def _values(targets: Ratings | jax.Array) -> jax.Array:
  return targets.values if isinstance(targets, Ratings) else jnp.asarray(
      targets)


def _clipped_errors(predictions, targets, min_rating, max_rating):
  values = _values(targets)
  if jnp.shape(predictions)[-1:] != values.shape[-1:]:
    raise ValueError(f"predictions {jnp.shape(predictions)} and targets "
                     f"{values.shape} must have one entry each.")
  mask = (values > 0).astype(values.dtype)
  clipped = jnp.clip(predictions, min_rating, max_rating)
  return mask * (clipped - values), jnp.sum(mask)


def rmse(predictions: jax.Array, targets: Ratings | jax.Array,
         min_rating: Bound = None, max_rating: Bound = None) -> jax.Array:
  """Root mean squared error: ``(k,)`` predictions at ``targets`` -> scalar
  (clipped to ``[min_rating, max_rating]`` when given)."""
  err, count = _clipped_errors(predictions, targets, min_rating, max_rating)
  return jnp.sqrt(jnp.sum(jnp.square(err)) / count)


def mae(predictions: jax.Array, targets: Ratings | jax.Array,
        min_rating: Bound = None, max_rating: Bound = None) -> jax.Array:
  """Mean absolute error: ``(k,)`` predictions at ``targets`` -> scalar
  (clipped to ``[min_rating, max_rating]`` when given)."""
  err, count = _clipped_errors(predictions, targets, min_rating, max_rating)
  return jnp.sum(jnp.abs(err)) / count


def ndcg(predictions: jax.Array, targets: Ratings, min_rating: Bound = None,
         max_rating: Bound = None) -> jax.Array:
  """Mean per-user NDCG over each user's entries in ``targets``.

  For each user: rank that user's target items by clipped predicted rating,
  descending; ties keep item order (the reference's stable sort); gain
  ``2^r - 1``, discount ``log2(2 + rank)`` (rank from 0), cut-off the
  number of the user's target items. Users with fewer than 2 target items
  are skipped; the result is the mean over the others. One sort of the
  ``k`` entries by (user, score, item): ``O(k log k)``.

  Args:
    predictions: ``(k,)`` predicted ratings at the entries of ``targets``.
    targets: the true ratings (:class:`~glocal_jax.ratings.Ratings`: NDCG
      needs the users).
    min_rating, max_rating: clip bounds (None: no clipping).

  Returns:
    scalar NDCG (NaN when no user has 2 or more target items).
  """
  if not isinstance(targets, Ratings):
    raise TypeError("ndcg needs the targets' users: pass a Ratings "
                    "(glocal_jax.ratings.from_triplets), not "
                    f"{type(targets).__name__}.")
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
  which ranks every user's items alike). Padding entries are ignored; NaN
  when ``targets`` has no rating.
  """
  mask = targets.mask
  n_users = targets.shape[1]
  count = jnp.zeros(n_users).at[targets.users].add(mask)
  total = jnp.zeros(n_users).at[targets.users].add(mask * predictions)
  mean = (total / jnp.maximum(count, 1.0))[targets.users]
  total_mask = jnp.sum(mask)
  spread = jnp.sqrt(jnp.sum(mask * jnp.square(predictions - mean))
                    / jnp.maximum(total_mask, 1.0))
  return jnp.where(total_mask > 0, spread, jnp.nan)


@jax.jit
def evaluate(predictions: jax.Array, targets: Ratings,
             min_rating: Bound = None,
             max_rating: Bound = None) -> dict[str, jax.Array]:
  """``{"rmse", "mae", "ndcg"}`` of ``(k,)`` predictions at ``targets``,
  clipped to ``[min_rating, max_rating]`` when given (e.g.
  ``*data.scale.bounds``)."""
  return {"rmse": rmse(predictions, targets, min_rating, max_rating),
          "mae": mae(predictions, targets, min_rating, max_rating),
          "ndcg": ndcg(predictions, targets, min_rating, max_rating)}
