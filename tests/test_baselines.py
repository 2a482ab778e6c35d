"""Mean predictors against a plain NumPy loop."""

import jax
import numpy as np
import pytest

import glocal_jax as gj


def numpy_means(ratings, by):
  observed = ratings > 0
  global_mean = ratings[observed].mean()
  out = np.empty(ratings.shape)
  for i in range(ratings.shape[0]):
    for u in range(ratings.shape[1]):
      if by == "global":
        out[i, u] = global_mean
        continue
      line = ratings[i] if by == "item" else ratings[:, u]
      out[i, u] = line[line > 0].mean() if (line > 0).any() else global_mean
  return out


@pytest.mark.parametrize("by", ["global", "item", "user"])
def test_mean_predictions_match_numpy(by):
  rng = np.random.default_rng(0)
  ratings = rng.integers(1, 6, (7, 5)) * (rng.random((7, 5)) < 0.5)
  ratings[2] = 0      # an item with no rating: global mean
  ratings[:, 3] = 0   # a user with no rating: global mean
  ratings[0, 0] = 5
  got = gj.mean_predictions(ratings, ratings > 0, by)
  np.testing.assert_allclose(got, numpy_means(ratings, by), rtol=1e-6)
  jitted = jax.jit(gj.mean_predictions, static_argnums=2)(
      ratings, ratings > 0, by)
  np.testing.assert_allclose(jitted, got, rtol=1e-6)


def test_mean_predictions_refuse_bad_input():
  with pytest.raises(ValueError, match="by must be one of"):
    gj.mean_predictions(np.ones((2, 2)), np.ones((2, 2)), "movie")
  with pytest.raises(ValueError, match="no observed training rating"):
    gj.mean_predictions(np.zeros((2, 2)), np.zeros((2, 2)), "item")
