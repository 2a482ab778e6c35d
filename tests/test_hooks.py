"""Replaceable pieces: a user's local kernel (Eq. 2), pooling (Eq. 4) and
global-kernel aggregation (Eq. 5) in every representation, against
NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import pytest
from test_representations import PLANS
from test_representations import prepared
from test_representations import problem
from test_representations import rating_matrix

import glocal_jax as gj
from glocal_jax import epochs
from glocal_jax import kernels
from glocal_jax import model
from glocal_jax import ratings as rt
from glocal_jax import representations as rep


def gaussian_rbf(u, v):
  """A Gaussian RBF local kernel, ``exp(-||u_i - v_j||^2)``: dense support,
  where the paper's is finite."""
  return jnp.exp(-kernels.squared_distances(u, v))


def softmax_aggregation(pooled, bank, dot_scale):
  """The kernels of the items with the highest pooled predictions weigh
  most: ``dot_scale * softmax(mu) @ bank``."""
  return dot_scale * (jax.nn.softmax(pooled) @ bank)


def centred_max_pooling(predictions):
  """An item's highest prediction less the mean of all predictions: reads
  every item's predictions, not only its own row."""
  return jnp.max(predictions, axis=1) - jnp.mean(predictions)


def centred_max_pooling_np(predictions):
  return predictions.max(axis=1) - predictions.mean()


def gaussian_rbf_np(u, v):
  u = np.asarray(u).reshape(u.shape[0], 1, -1)
  v = np.asarray(v).reshape(1, v.shape[-2], -1)
  return np.exp(-((u - v) ** 2).sum(-1))


def softmax_aggregation_np(pooled, bank, dot_scale):
  weights = np.exp(pooled - pooled.max())
  return dot_scale * (weights / weights.sum()) @ bank


@pytest.mark.parametrize("plan", list(PLANS))
def test_own_pieces_equal_numpy_in_every_plan(x64, plan):
  params = problem()
  r = rating_matrix()
  expected = ref.finetune_loss(
      jax.tree.map(np.asarray, params), r, r > 0, 2.0, 0.5, 1.5,
      softmax_aggregation_np, gaussian_rbf_np, centred_max_pooling_np)
  loss = jax.jit(jax.value_and_grad(rep.finetune_loss),
                 static_argnums=(5, 6, 7))
  got, grad = loss(params, prepared(plan), 2.0, 0.5, 1.5,
                   softmax_aggregation, gaussian_rbf, centred_max_pooling)
  np.testing.assert_allclose(got, expected, rtol=1e-10)
  # The gradient of the dense reference with the same pieces.
  dense_grad = jax.jit(jax.grad(model.finetune_loss),
                       static_argnums=(6, 7, 8))(
      params, jnp.asarray(r), jnp.asarray(r > 0), 2.0, 0.5, 1.5,
      softmax_aggregation, gaussian_rbf, centred_max_pooling)
  for a, b in zip(jax.tree.leaves(grad), jax.tree.leaves(dense_grad),
                  strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
  # The pieces matter: the paper's pooling, or all the paper's pieces, give
  # another loss (the softmax flattens the pooling's effect, which is still
  # a hundred times the 1e-10 the comparison with NumPy allows).
  average = loss(params, prepared(plan), 2.0, 0.5, 1.5, softmax_aggregation,
                 gaussian_rbf, kernels.item_average_pooling)[0]
  paper = jax.jit(rep.finetune_loss)(params, prepared(plan), 2.0, 0.5, 1.5)
  assert abs(float(average) - float(got)) > 1e-8 * abs(float(got))
  assert abs(float(paper) - float(got)) > 1e-6 * abs(float(got))
  pre = jax.jit(rep.pretrain_loss, static_argnums=4)(
      params["autoencoder"], prepared(plan), 2.0, 0.5, gaussian_rbf)
  np.testing.assert_allclose(pre, _np_pretrain(params, r), rtol=1e-10)


def _np_pretrain(params, r):
  pred, reg = ref.autoencoder(jax.tree.map(np.asarray,
                                           params["autoencoder"]), r, 2.0,
                              0.5, gaussian_rbf_np)
  return 0.5 * (((r > 0) * (r - pred)) ** 2).sum() + reg


def test_train_with_own_pieces_equal_in_dense_blocked_and_sparse():
  """``gj.train`` with a Gaussian RBF kernel, a pooling over every item and
  a softmax aggregation in the config: the same losses and predictions
  whatever the representation (float32), and not those of the paper's
  pieces."""
  ratings = rt.from_dense(rating_matrix())
  config = gj.GLocalKConfig(
      hidden=(8,), n_dim=3, pretrain_epochs=1, finetune_epochs=2,
      pretrain_maxiter=3, finetune_maxiter=3, lambda_2=2.0, lambda_s=0.5,
      local_kernel=gaussian_rbf, aggregation=softmax_aggregation,
      pooling=centred_max_pooling)
  items, users = (jnp.asarray(a) for a in np.divmod(
      np.arange(ratings.shape[0] * ratings.shape[1]), ratings.shape[1]))
  runs = {}
  for representation in ("dense", "blocked", "sparse"):
    c = config.replace(representation=representation, block_size=8,
                       chunk_size=16)
    result = gj.train(c, ratings, jax.random.PRNGKey(0))
    data = gj.prepare(c, ratings)
    runs[representation] = (
        [h.loss for h in result.history],
        gj.predict(c, result.params, data, "finetune", users=users,
                   items=items),
        result.params, data)
  losses, pred, params, data = runs["dense"]
  for other in ("blocked", "sparse"):
    np.testing.assert_allclose(runs[other][0], losses, rtol=2e-5)
    np.testing.assert_allclose(runs[other][1], pred, rtol=2e-4, atol=2e-4)
  # The last epoch's loss is the fine-tuning loss of the own pieces at the
  # trained parameters (the local kernel is in it, through the layers, and
  # the aggregation), not that of the paper's pieces.
  paper = config.replace(local_kernel=True, aggregation="weighted",
                         pooling="mean")
  at_end = {name: float(epochs.finetune_loss_fn(
      c.replace(representation="dense"))(params, data))
            for name, c in (("own", config), ("paper", paper))}
  np.testing.assert_allclose(at_end["own"], losses[-1], rtol=1e-5)
  assert abs(at_end["paper"] - losses[-1]) > 1e-4 * losses[-1]
  # Recorded by name, so that a run's metrics.json says what it used.
  assert config.to_dict()["local_kernel"].endswith("gaussian_rbf")
  assert config.to_dict()["pooling"].endswith("centred_max_pooling")


def test_config_refuses_what_is_neither_a_name_nor_a_function():
  with pytest.raises(ValueError, match="aggregation must be one of"):
    gj.GLocalKConfig(aggregation="softmax")
  with pytest.raises(ValueError, match="local_kernel must be True, False or"):
    gj.GLocalKConfig(local_kernel="gaussian")
  with pytest.raises(ValueError, match="pooling must be one of"):
    gj.GLocalKConfig(pooling="max")


def test_a_compiled_prediction_follows_the_configs_pooling():
  """The pooling is part of the compiled program's key: a config with
  another pooling gets its own program, never a stale one (predictions
  differ as the unjitted dense model's do)."""
  ratings = rt.from_dense(rating_matrix())
  config = gj.GLocalKConfig(hidden=(8,), n_dim=3)
  params = gj.init_params(jax.random.PRNGKey(0), *ratings.shape, hidden=(8,),
                          n_dim=3)
  data = gj.prepare(config, ratings)
  items, users = (jnp.asarray(a) for a in np.divmod(
      np.arange(ratings.shape[0] * ratings.shape[1]), ratings.shape[1]))
  got = {}
  for name, pooling in (("mean", "mean"), ("max", centred_max_pooling)):
    c = config.replace(pooling=pooling)
    got[name] = np.asarray(gj.predict(c, params, data, "finetune",
                                      users=users, items=items))
    dense = model.finetune_predictions(params, jnp.asarray(rating_matrix(),
                                                           jnp.float32), 1.0,
                                       "weighted", kernels.local_kernel,
                                       c.pooling_fn)
    np.testing.assert_allclose(got[name], np.asarray(dense).reshape(-1),
                               rtol=1e-4, atol=1e-5)
  assert np.abs(got["max"] - got["mean"]).max() > 1e-3
