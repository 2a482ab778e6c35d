"""Nothing silently wrong: malformed Ratings, an unknown phase and indices
outside the matrix are refused with a message, before any computation."""

import jax
import numpy as np
import pytest

import glocal_jax as gj
from glocal_jax import data as gdata


def test_unsorted_or_repeated_triplets_are_refused_where_they_would_mislead():
  good = gdata.synthetic(20, 15, density=0.3, seed=1).train
  config = gj.preset("ml-100k", hidden=(4, 4), representation="blocked")
  gj.ratings.check(good)
  gj.prepare(config, good)
  order = np.random.default_rng(0).permutation(good.nnz)
  shuffled = gj.Ratings(good.items[order], good.users[order],
                        good.values[order], good.shape)
  with pytest.raises(ValueError, match="must be sorted by item, then user.*"
                     "from_triplets"):
    gj.prepare(config, shuffled)
  # from_triplets sorts them into the same Ratings.
  again = gj.ratings.from_triplets(shuffled.items, shuffled.users,
                                   shuffled.values, good.shape)
  np.testing.assert_array_equal(again.items, good.items)
  twice = gj.Ratings(np.r_[good.items[:1], good.items],
                     np.r_[good.users[:1], good.users],
                     np.r_[good.values[:1], good.values], good.shape)
  with pytest.raises(ValueError, match="rates the same cell"):
    gj.ratings.check(twice)
  outside = gj.Ratings(good.items, good.users.copy(), good.values, good.shape)
  outside.users[-1] = 15
  with pytest.raises(ValueError, match="user index 15 .* out of range"):
    gj.prepare(config, outside)
  # Padding (value 0 at the last cell) is fine.
  gj.ratings.check(gj.ratings.pad(good, good.nnz + 3))


def test_predict_refuses_a_misspelt_phase_and_indices_outside():
  data = gdata.synthetic(20, 15, density=0.3, seed=1)
  config = gj.preset("ml-100k", hidden=(4, 4))
  params = gj.training.init_params(config, jax.random.PRNGKey(0), 20, 15)
  prepared = gj.prepare(config, data.train)
  items, users = np.arange(3), np.zeros(3, np.int32)
  assert gj.predict(config, params, prepared, items, users,
                    "finetune").shape == (3,)
  with pytest.raises(ValueError, match="phase must be one of.*'fine-tune'"):
    gj.predict(config, params, prepared, items, users, "fine-tune")
  with pytest.raises(ValueError, match="item index 20 is outside the 20 x 15"):
    gj.predict(config, params, prepared, np.array([20]), np.array([0]),
               "pretrain")
