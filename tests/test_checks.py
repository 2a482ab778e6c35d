"""Nothing silently wrong: malformed Ratings, an unknown phase and indices
outside the matrix are refused with a message, before any computation."""

import jax
import numpy as np
import pytest

import glocal_jax as gj
from glocal_jax import data as gdata
from glocal_jax.plan import Plan


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
  params = gj.training.initial_params(config, jax.random.PRNGKey(0),
                                      (20, 15))
  prepared = gj.prepare(config, data.train)
  items, users = np.arange(3), np.zeros(3, np.int32)
  assert gj.predict(config, params, prepared, "finetune", users=users,
                    items=items).shape == (3,)
  with pytest.raises(ValueError, match="phase must be one of.*'fine-tune'"):
    gj.predict(config, params, prepared, "fine-tune", users=users,
               items=items)
  with pytest.raises(ValueError, match="item index 20 is outside the 20 x 15"):
    gj.predict(config, params, prepared, "pretrain", users=np.array([0]),
               items=np.array([20]))
  with pytest.raises(ValueError, match="prepared for orientation='items'"):
    gj.predict(config.replace(orientation="users"), params, prepared,
               "pretrain", users=users, items=items)


@pytest.mark.parametrize("method", ["dense", "blocked", "sparse"])
def test_shuffled_triplets_give_the_sorted_loss_or_an_error(method):
  """In every representation: unordered triplets through from_triplets give
  the loss of sorted ones; passed raw to representations.prepare, an error
  (the blocked and sparse products would read them wrongly)."""
  from glocal_jax import representations as rep
  good = gdata.synthetic(20, 15, density=0.3, seed=1).train
  order = np.random.default_rng(0).permutation(good.nnz)
  plan = Plan(method, method, method, 6, 16)
  params = gj.init_params(jax.random.PRNGKey(0), 20, 15, hidden=(4,))
  expected = rep.finetune_loss(params, rep.build_on_device(good, plan), 1.0, 0.1)
  again = gj.from_triplets(good.items[order], good.users[order],
                           good.values[order], good.shape)
  np.testing.assert_allclose(
      rep.finetune_loss(params, rep.build_on_device(again, plan), 1.0, 0.1),
      expected, rtol=1e-6)
  shuffled = gj.Ratings(good.items[order], good.users[order],
                        good.values[order], good.shape)
  with pytest.raises(ValueError, match="must be sorted by item"):
    rep.build_on_device(shuffled, plan)


def test_a_test_file_sharing_pairs_with_training_can_drop_them(tmp_path):
  train = tmp_path / "train.csv"
  test = tmp_path / "test.csv"
  train.write_text("u1,a,4\nu1,b,3\nu2,a,5\nu2,c,2\nu3,b,1\n")
  test.write_text("u1,c,2\nu2,a,5\nu3,b,4\nu3,a,3\n")  # u2,a and u3,b shared
  with pytest.raises(gdata.DataFormatError, match="overlap='drop'"):
    gdata.load_ratings_file(str(train), str(test), cache_dir="none")
  data = gdata.load_ratings_file(str(train), str(test), overlap="drop",
                                 cache_dir="none")
  assert data.test.count() == 2 and data.train.count() == 5
  assert any("2 test rating(s) of (user, item) pairs also in the training "
             "file dropped" in n for n in data.notes)
  pairs = {(data.user_ids[u].decode(), data.item_ids[i].decode())
           for i, u in zip(data.test.items, data.test.users)}
  assert pairs == {("u1", "c"), ("u3", "a")}


def test_every_rating_equal_is_refused_unless_a_scale_is_given(tmp_path):
  path = tmp_path / "ratings.csv"
  path.write_text("".join(f"u{u},i{i},4\n" for u in range(6)
                          for i in range(5)))
  with pytest.raises(gdata.DataFormatError, match="every rating is 4: "
                     "there is nothing to learn"):
    gdata.load_ratings_file(str(path), cache_dir="none")
  data = gdata.load_ratings_file(str(path), scale=gdata.STARS,
                                 cache_dir="none")
  assert data.scale == gdata.STARS
