"""glocal_jax.fit -> TrainedModel: the model layer every path goes through
(orientation, scale, selection across both phases, diagnosis, raw ids,
save and load), and what research code composes it with (callbacks that
stop, bounded L-BFGS-B, the ratings' dtype)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import glocal_jax as gj
from glocal_jax import data as gdata
from glocal_jax import epochs
from glocal_jax import optim
from glocal_jax import representations as rep

CONFIG = gj.GLocalKConfig(hidden=(8,), n_dim=2, pretrain_epochs=2,
                          finetune_epochs=2, pretrain_maxiter=3,
                          finetune_maxiter=3)


def with_text_ids(data: gdata.RatingData) -> gdata.RatingData:
  """``data`` with raw ids ``i0..`` and ``u0..`` (sorted as text)."""
  ids = lambda prefix, n: np.array(sorted(f"{prefix}{k}".encode()
                                          for k in range(n)))
  return dataclasses.replace(data, item_ids=ids("i", data.shape[0]),
                             user_ids=ids("u", data.shape[1]))


@pytest.fixture(scope="module")
def data():
  # On 1..10: the model trains on its own 1..5 and predicts on the data's.
  base = gdata.synthetic(30, 24, density=0.4, seed=11)
  double = lambda r: dataclasses.replace(r, values=r.values * 2)
  scaled = dataclasses.replace(base, train=double(base.train),
                               test=double(base.test),
                               scale=gdata.RatingScale(2.0, 10.0, 2.0))
  return gdata.split_validation(with_text_ids(scaled), 0.15, seed=0)


@pytest.fixture(scope="module")
def fns():
  """CONFIG's compiled epochs, for every fit of it here (any shape or
  orientation: each compiles once per shape)."""
  return epochs.make_epoch_fns(CONFIG)


@pytest.fixture(scope="module")
def model(data, fns):
  return gj.fit(CONFIG, data, jax.random.PRNGKey(0), epoch_fns=fns)


def test_fit_selects_on_validation_across_both_phases(data, model):
  valid = [h.metrics["valid_rmse"] for h in model.history]
  best = model.history[int(np.argmin(valid))]
  assert (model.phase, model.epoch) == (best.phase, best.epoch)
  assert len(model.history) == 4 and model.plan["name"] in ("dense",
                                                             "sparse")
  # The record's metrics are the data's scale: its test RMSE is the model's
  # own evaluation of the test ratings at the selected epoch.
  got = model.evaluate(data.test)
  np.testing.assert_allclose(got["rmse"], best.metrics["test_rmse"],
                             rtol=1e-5)
  with pytest.raises(ValueError, match="select must be one of"):
    gj.fit(CONFIG, data, jax.random.PRNGKey(0), select="test")


def test_predictions_in_raw_ids_on_the_datas_scale(data, model):
  host = data.test.to_host()
  users = [data.user_ids[u].decode() for u in host.users]
  items = [data.item_ids[i].decode() for i in host.items]
  by_ids = model.predict(users=users, items=items)
  np.testing.assert_array_equal(by_ids, model.predict_indices(host.items,
                                                              host.users))
  assert by_ids.min() >= 2.0 and by_ids.max() <= 10.0  # clipped to 2..10
  rmse = float(np.sqrt(np.mean((by_ids - host.values) ** 2)))
  np.testing.assert_allclose(rmse, model.evaluate(data.test)["rmse"],
                             rtol=1e-5)
  with pytest.raises(gj.trained.UnknownIdError, match="unknown user id 'u1 '"):
    model.predict(users=["u1 "], items=["i1"])
  with pytest.raises(TypeError, match="users must be an id or a sequence"):
    model.predict(users=object(), items="i1")


def test_save_then_load_gives_identical_predictions(tmp_path, data, model):
  model.save(str(tmp_path / "model"))
  back = gj.load_model(str(tmp_path / "model"))
  host = data.test.to_host()
  np.testing.assert_array_equal(
      back.predict_indices(host.items, host.users),
      model.predict_indices(host.items, host.users))
  assert (back.phase, back.epoch, back.plan) == (model.phase, model.epoch,
                                                 model.plan)
  assert [h.to_dict() for h in back.history] == [h.to_dict()
                                                  for h in model.history]
  assert back.warnings == model.warnings
  assert back.recommend("u3", k=3) == model.recommend("u3", k=3)
  with pytest.raises(ValueError, match="k must be a positive integer"):
    back.recommend("u3", k=-2)


def centred_max(predictions):
  """A pooling of Eq. 4 that research code might try (module level, so a
  saved model finds it again by its name)."""
  return jnp.max(predictions, axis=1) - jnp.mean(predictions)


def test_pooling_through_the_config_changes_the_model(tmp_path, data, model):
  pooled = gj.fit(CONFIG.replace(pooling=centred_max), data,
                  jax.random.PRNGKey(0), select="last")
  # The same pre-training, another fine-tuning.
  losses = lambda m, phase: [h.loss for h in m.history if h.phase == phase]
  assert losses(pooled, "pretrain") == losses(model, "pretrain")
  assert abs(losses(pooled, "finetune")[-1] - losses(model, "finetune")[-1]
             ) > 1e-3
  host = data.test.to_host()
  a = pooled.predict_indices(host.items, host.users)
  # Saved by name, found again by it; a lambda needs the config back.
  pooled.save(str(tmp_path / "pooled"))
  back = gj.load_model(str(tmp_path / "pooled"))
  assert back.config.pooling is centred_max
  np.testing.assert_array_equal(back.predict_indices(host.items, host.users),
                                a)
  anonymous = model.config.replace(pooling=lambda p: jnp.max(p, axis=1))
  dataclasses.replace(model, config=anonymous).save(str(tmp_path / "anon"))
  with pytest.raises(ValueError, match="cannot be imported by that name.*"
                     "config="):
    gj.load_model(str(tmp_path / "anon"))
  assert gj.load_model(str(tmp_path / "anon"),
                       config=anonymous).config is anonymous


def test_user_based_fit_is_the_item_based_fit_of_the_transpose(data, model,
                                                               fns):
  users = gj.fit(CONFIG.replace(orientation="users"), data,
                 jax.random.PRNGKey(0), select="last", epoch_fns=fns)
  flipped = gj.fit(CONFIG, data.transposed(), jax.random.PRNGKey(0),
                   select="last", epoch_fns=fns)
  assert (users.phase, users.epoch) == ("finetune", 2)  # the last
  shapes = lambda m: [w["w"].shape for w in m.params["autoencoder"]]
  assert shapes(users) == shapes(flipped) == [(30, 8), (8, 30)]
  assert shapes(model) == [(24, 8), (8, 24)]
  host = data.test.to_host()
  np.testing.assert_allclose(users.predict_indices(host.items, host.users),
                             flipped.predict_indices(host.users, host.items),
                             rtol=1e-6)
  for a, b in zip(users.history, flipped.history, strict=True):
    assert a.loss == b.loss
    np.testing.assert_allclose(a.metrics["test_rmse"], b.metrics["test_rmse"],
                               rtol=1e-6)
  # The low-level API refuses data prepared for the other orientation.
  prepared = gj.prepare(CONFIG, data.train)
  with pytest.raises(ValueError, match="prepared for orientation='items'.*"
                     "glocal_jax.fit"):
    gj.train(CONFIG.replace(orientation="users"), prepared,
             jax.random.PRNGKey(0))


def test_a_callback_that_returns_true_stops_fit_and_train(data, fns):
  seen = []

  def after_two(record, params):
    seen.append((record.phase, record.epoch, "valid_rmse" in record.metrics))
    return len(seen) == 2

  stopped = gj.fit(CONFIG, data, jax.random.PRNGKey(0), callback=after_two,
                   epoch_fns=fns)
  assert seen == [("pretrain", 1, True), ("pretrain", 2, True)]
  assert len(stopped.history) == 2
  result = gj.train(CONFIG, data.train, jax.random.PRNGKey(0),
                    callback=lambda record, params: record.phase == "finetune",
                    epoch_fns=fns)
  assert [(h.phase, h.epoch) for h in result.history] == [
      ("pretrain", 1), ("pretrain", 2), ("finetune", 1)]
  with pytest.raises(TypeError, match="returns True \\(stop\\), False or "
                     "None, got dict"):
    gj.train(CONFIG, data.train, jax.random.PRNGKey(0),
             callback=lambda record, params: {"rmse": 1.0}, epoch_fns=fns)


def test_warnings_never_raise_without_test_ratings(data, fns):
  no_test = dataclasses.replace(data, test=gj.ratings.take(
      data.test.to_host(), np.zeros(0, np.int64)))
  model = gj.fit(CONFIG.replace(finetune_epochs=0), no_test,
                 jax.random.PRNGKey(0), epoch_fns=fns)
  assert isinstance(model.warnings, list)
  bare = dataclasses.replace(model, history=[
      gj.EpochRecord("pretrain", 1, 1.0, 1, 1, 0.1)], mean_predictors={})
  assert bare.warnings == []


def test_bounded_lbfgsb_keeps_each_leaf_in_its_box():
  target = {"w": jnp.array([3.0, -3.0, 0.5]), "b": jnp.array(-2.0),
            "free": jnp.array([4.0, -4.0])}
  loss = lambda p: sum(jnp.sum((p[k] - target[k]) ** 2) for k in target)
  lower = {"w": jnp.array([-1.0, -1.0, -1.0]), "b": 0.0, "free": None}
  upper = {"w": 1.0, "b": None, "free": None}
  epoch = jax.jit(optim.jaxopt_lbfgsb_epoch(loss, 30,
                                            bounds=(lower, upper)))
  start = jax.tree.map(jnp.zeros_like, target)
  got, stats = epoch(start)
  np.testing.assert_allclose(got["w"], [1.0, -1.0, 0.5], atol=1e-5)
  np.testing.assert_allclose(got["b"], 0.0, atol=1e-6)
  np.testing.assert_allclose(got["free"], [4.0, -4.0], atol=1e-4)
  # The starting point is clipped into the box first.
  outside = {**start, "w": jnp.array([5.0, 5.0, 5.0])}
  assert float(jnp.max(epoch(outside)[0]["w"])) <= 1.0
  with pytest.raises(ValueError, match="bounds need solver='lbfgsb'"):
    optim.jaxopt_lbfgsb_epoch(loss, 5, bounds=(lower, upper),
                              solver="lbfgs")
  with pytest.raises(ValueError, match="the parameters' structure"):
    optim.jaxopt_lbfgsb_epoch(loss, 5, bounds=({"w": 0.0}, None))(start)


def test_ratings_keep_their_dtype_and_every_plan_is_exact_in_x64(x64):
  r = np.random.default_rng(3).integers(0, 6, (14, 11)).astype(np.float64)
  r[r > 0] += 0.25  # values float32 would round
  ratings = gj.from_dense(r)
  assert ratings.values.dtype == np.float64
  assert gj.from_dense(r.astype(int)).values.dtype == np.float32
  assert gj.from_triplets([0], [1], np.array([4.5]), (2, 2)).values.dtype == (
      np.float64)
  params = gj.init_params(jax.random.PRNGKey(0), 14, 11, hidden=(5,), n_dim=2,
                          dtype=jnp.float64)
  expected = gj.finetune_loss(params, jnp.asarray(r), jnp.asarray(r > 0),
                              2.0, 0.1, 1.5)
  for method in ("dense", "blocked", "sparse"):
    data = rep.build_on_device(ratings, gj.plan.Plan(method, method, method,
                                                     4, 8))
    got = rep.finetune_loss(params, data, 2.0, 0.1, 1.5)
    np.testing.assert_allclose(got, expected, rtol=1e-13)
