"""Model and losses against NumPy; gradients, jit, vmap; initialisation."""

import jax
import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import pytest
from test_kernels import directional_fd_check

import glocal_jax as gj

M_ITEMS, N_USERS = 9, 7


def small_problem(seed=0, dtype=jnp.float32, conv_layers=1, kernel_size=3,
                  local_kernel=True):
  key = jax.random.PRNGKey(seed)
  params = gj.init_params(key, M_ITEMS, N_USERS, hidden=(6, 4), n_dim=3,
                          kernel_size=kernel_size, conv_layers=conv_layers,
                          local_kernel=local_kernel, dtype=dtype)
  # Spread u, v so that the finite-support kernel is neither all 1 nor 0.
  rng = np.random.default_rng(seed)
  for layer in params["autoencoder"]:
    for name in ("u", "v"):
      if name in layer:
        layer[name] = jnp.asarray(rng.normal(0, 0.3, layer[name].shape), dtype)
  ratings = rng.integers(1, 6, (M_ITEMS, N_USERS)) * (
      rng.random((M_ITEMS, N_USERS)) < 0.5)
  ratings = jnp.asarray(ratings, dtype)
  return params, ratings, (ratings > 0).astype(dtype)


def to_numpy(tree):
  return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def test_init_params_shapes_and_distributions():
  params = gj.init_params(jax.random.PRNGKey(0), 50, 40, hidden=(30, 20),
                          n_dim=5, kernel_size=5, conv_layers=2)
  layers = params["autoencoder"]
  assert [l["w"].shape for l in layers] == [(40, 30), (30, 20), (20, 40)]
  assert [l["u"].shape for l in layers] == [(40, 1, 5), (30, 1, 5), (20, 1, 5)]
  assert [l["v"].shape for l in layers] == [(1, 30, 5), (1, 20, 5), (1, 40, 5)]
  assert [b.shape for b in params["kernel_banks"]] == [(50, 25), (50, 25)]
  w = np.asarray(layers[0]["w"])
  limit = np.sqrt(6 / (40 + 30))
  assert np.abs(w).max() <= limit and np.abs(w).max() > 0.9 * limit
  b = np.asarray(layers[0]["b"])
  assert np.abs(b).max() <= np.sqrt(3 / 30)
  u = np.asarray(layers[0]["u"])
  assert np.abs(u).max() <= 2e-3 and 0.5e-3 < u.std() < 1e-3
  bank = np.asarray(params["kernel_banks"][0])
  assert np.abs(bank).max() <= 0.2 and 0.05 < bank.std() < 0.1
  # Explicit keys: same key, same params; different key, different params.
  again = gj.init_params(jax.random.PRNGKey(0), 50, 40, hidden=(30, 20),
                         n_dim=5, kernel_size=5, conv_layers=2)
  other = gj.init_params(jax.random.PRNGKey(1), 50, 40, hidden=(30, 20),
                         n_dim=5, kernel_size=5, conv_layers=2)
  np.testing.assert_array_equal(again["kernel_banks"][1],
                                params["kernel_banks"][1])
  np.testing.assert_array_equal(again["autoencoder"][0]["w"], w)
  assert not np.allclose(other["autoencoder"][0]["w"], w)


def test_dense_layers_without_local_kernel():
  params = gj.init_params(jax.random.PRNGKey(0), 5, 4, hidden=(3,),
                          local_kernel=False)
  assert all(set(l) == {"w", "b"} for l in params["autoencoder"])


def test_autoencoder_matches_numpy():
  params, ratings, _ = small_problem()
  pred, reg = gj.autoencoder(params["autoencoder"], ratings, 2.0, 0.5)
  pred_np, reg_np = ref.autoencoder(to_numpy(params["autoencoder"]),
                                    np.asarray(ratings, np.float64), 2.0, 0.5)
  np.testing.assert_allclose(pred, pred_np, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(reg, reg_np, rtol=1e-5)


def test_kernel_layer_regulariser_is_half_scaled_l2():
  params, ratings, _ = small_problem()
  layer = params["autoencoder"][0]
  _, reg = gj.kernel_layer(layer, ratings, lambda_2=3.0, lambda_s=0.0)
  np.testing.assert_allclose(reg, 1.5 * np.sum(np.asarray(layer["w"]) ** 2),
                             rtol=1e-6)


@pytest.mark.parametrize("aggregation,conv_layers,t",
                         [("weighted", 1, 3), ("mean", 1, 3),
                          ("weighted", 2, 5)])
def test_losses_match_numpy(aggregation, conv_layers, t):
  params, ratings, mask = small_problem(conv_layers=conv_layers, kernel_size=t)
  p64, r64, m64 = to_numpy(params), np.asarray(ratings, np.float64), np.asarray(
      mask, np.float64)
  np.testing.assert_allclose(
      gj.pretrain_loss(params["autoencoder"], ratings, mask, 2.0, 0.5),
      ref.pretrain_loss(p64["autoencoder"], r64, m64, 2.0, 0.5), rtol=1e-5)
  np.testing.assert_allclose(
      gj.global_kernel_ratings(params, ratings, 1.5, aggregation),
      ref.global_kernel_ratings(p64, r64, 1.5, aggregation),
      rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(
      gj.finetune_loss(params, ratings, mask, 2.0, 0.5, 1.5, aggregation),
      ref.finetune_loss(p64, r64, m64, 2.0, 0.5, 1.5, aggregation), rtol=1e-5)


def test_loss_gradients_match_finite_differences(x64):
  params, ratings, mask = small_problem(dtype=jnp.float64)
  directional_fd_check(
      lambda p: gj.pretrain_loss(p, ratings, mask, 2.0, 0.5),
      (params["autoencoder"],))
  directional_fd_check(
      lambda p: gj.finetune_loss(p, ratings, mask, 2.0, 0.5, 1.5, "weighted"),
      (params,), seed=1)
  directional_fd_check(
      lambda p: gj.finetune_loss(p, ratings, mask, 2.0, 0.5, 1.0, "mean"),
      (params,), seed=2)


def test_finetune_gradient_flows_through_pooled_predictions(x64):
  """The output layer's bias only reaches R_hat through avgpool(AE(R))."""
  params, ratings, mask = small_problem(dtype=jnp.float64)
  grad_r_hat = jax.jit(jax.grad(lambda p: jnp.sum(
      gj.global_kernel_ratings(p, ratings, 1.0, "weighted"))))(params)
  assert float(jnp.abs(grad_r_hat["autoencoder"][-1]["b"]).sum()) > 0
  grad_mean = jax.jit(jax.grad(lambda p: jnp.sum(
      gj.global_kernel_ratings(p, ratings, 1.0, "mean"))))(params)
  assert float(jnp.abs(grad_mean["autoencoder"][-1]["b"]).sum()) == 0


def test_jit_equals_eager():
  params, ratings, mask = small_problem()
  f = lambda p: gj.finetune_loss(p, ratings, mask, 2.0, 0.5, 1.0, "weighted")
  np.testing.assert_allclose(jax.jit(f)(params), f(params), rtol=1e-6)
  g = lambda p: gj.autoencoder(p, ratings)[0]
  np.testing.assert_allclose(jax.jit(g)(params["autoencoder"]),
                             g(params["autoencoder"]), rtol=1e-5, atol=1e-6)


def test_vmap_over_stacked_params_equals_loop():
  seeds = range(3)
  problems = [small_problem(seed=s) for s in seeds]
  ratings, mask = problems[0][1], problems[0][2]
  stacked = jax.tree.map(lambda *x: jnp.stack(x), *[p[0] for p in problems])
  # Compiled (the loop too: one program for every problem, not op by op).
  loss = jax.jit(lambda p: gj.finetune_loss(p, ratings, mask, 2.0, 0.5, 1.0,
                                            "weighted"))
  batched = jax.vmap(loss)(stacked)
  looped = jnp.stack([loss(p[0]) for p in problems])
  np.testing.assert_allclose(batched, looped, rtol=1e-5)
  grads = jax.vmap(jax.grad(loss))(stacked)
  grad = jax.jit(jax.grad(loss))
  for i, p in enumerate(problems):
    np.testing.assert_allclose(grads["kernel_banks"][0][i],
                               grad(p[0])["kernel_banks"][0],
                               rtol=1e-4, atol=1e-5)
