"""Mean predictors: the trivial baselines a rating model has to beat.

Each predicts a rating from the observed training ratings alone: their
global mean, the item's mean or the user's mean. An item or user with no
training rating gets the global mean. They also tell a failed fit apart: an
item-based autoencoder whose hidden code no longer depends on its input can
only output one vector for every item, i.e. at best each user's mean rating
(RESULTS.md, "Collapsed seeds").

:func:`fallback_predictions` uses them where a model has learnt nothing:
test ratings of users or items without a training rating, so that the
whole test set is always evaluated.
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


def cold_entries(train: Ratings, items: jax.Array, users: jax.Array
                 ) -> tuple[jax.Array, jax.Array]:
  """``(cold_user, cold_item)``: ``(k,)`` booleans, True where the user (or
  the item) of the pair ``(items, users)`` has no training rating."""
  mask = (jnp.asarray(train.values) > 0).astype(jnp.float32)
  has = lambda index, size, at: (
      jnp.zeros(size).at[index].add(mask)[at] > 0)
  return (~has(train.users, train.shape[1], users),
          ~has(train.items, train.shape[0], items))


def fallback_predictions(predictions: jax.Array, train: Ratings,
                         items: jax.Array, users: jax.Array) -> jax.Array:
  """``predictions`` at ``(items, users)``, with those a model cannot make
  replaced: a pair whose user has no training rating gets the item's
  training mean; one whose item has none, the user's; one with neither,
  the global mean.

  Why: an item-based autoencoder's output for user ``u`` is
  ``H_L[i] . W'[:, u] + b[u]``; with no rating of ``u`` in training, that
  column was fitted to nothing (only shrunk by the regulariser), so its
  prediction is noise around ``b[u]``, while the item's mean is the best
  estimate the training data gives. A cold item's input row is empty, so
  the model outputs the same vector for every such item; the user's mean
  is the matching estimate. Published comparisons on Monti et al.'s splits
  (IGMC, GC-MC) evaluate these ratings too, so dropping them would not
  compare like with like.

  Args:
    predictions: ``(k,)`` (or ``(..., k)``) the model's predictions.
    train: the training ratings.
    items, users: ``(k,)`` the pairs.

  Returns:
    predictions of the same shape.
  """
  cold_user, cold_item = cold_entries(train, items, users)
  item_mean = mean_predictions(train, items, users, "item")
  user_mean = mean_predictions(train, items, users, "user")
  global_mean = mean_predictions(train, items, users, "global")
  fallback = jnp.where(cold_item, jnp.where(cold_user, global_mean, user_mean),
                       item_mean)
  return jnp.where(cold_user | cold_item, fallback, predictions)
