"""Mean predictors against a plain NumPy loop."""

import jax
import numpy as np
import pytest

import glocal_jax as gj
from glocal_jax import ratings as rt


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
  train = rt.pad(rt.from_dense(ratings), 30)  # padding is ignored
  items, users = np.divmod(np.arange(35), 5)
  expected = numpy_means(ratings, by)[items, users]
  got = gj.mean_predictions(train, items, users, by)
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  jitted = jax.jit(gj.mean_predictions, static_argnums=3)(
      train, items, users, by)
  np.testing.assert_allclose(jitted, expected, rtol=1e-6)


def test_mean_predictions_refuse_bad_input():
  train = rt.from_dense(np.ones((2, 2)))
  with pytest.raises(ValueError, match="by must be one of"):
    gj.mean_predictions(train, [0], [0], "movie")
  with pytest.raises(ValueError, match="no observed training rating"):
    gj.mean_predictions(rt.pad(rt.from_dense(np.zeros((2, 2))), 3), [0], [0],
                        "item")
