"""Dense, blocked and sparse formulations against the dense reference model.

The reference is :mod:`glocal_jax.model` on the ``(m, n)`` matrix (plain
autodiff, ``lax``-free pooling of the full output); itself checked against
NumPy in test_model.py.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import glocal_jax as gj
from glocal_jax import blocked
from glocal_jax import model
from glocal_jax import ratings as rt
from glocal_jax import representations as rep
from glocal_jax import sparse
from glocal_jax.plan import Plan
from glocal_jax.plan import choose_plan

M_ITEMS, N_USERS = 23, 17


def rating_matrix(seed=0):
  """Random ratings with an empty item, an empty user, full first row and
  last cell (matrix borders), and blocks of 5 items that cut conv windows."""
  rng = np.random.default_rng(seed)
  r = rng.integers(1, 6, (M_ITEMS, N_USERS)) * (
      rng.random((M_ITEMS, N_USERS)) < 0.3)
  r[5] = 0          # an item with no rating, at a block border (B = 5)
  r[:, 3] = 0       # a user with no rating
  r[0] = rng.integers(1, 6, N_USERS)  # first row: the top border
  r[-1, -1] = 4     # last cell: bottom-right border
  r[9:11, :] = rng.integers(1, 6, (2, N_USERS))  # rows across a block border
  return r.astype(np.float64)


def problem(t=3, conv_layers=1, dtype=jnp.float64, seed=1):
  params = gj.init_params(jax.random.PRNGKey(seed), M_ITEMS, N_USERS,
                          hidden=(6, 4), n_dim=3, kernel_size=t,
                          conv_layers=conv_layers, dtype=dtype)
  rng = np.random.default_rng(seed)
  for layer in params["autoencoder"]:  # a kernel neither all 0 nor all 1
    for name in ("u", "v"):
      layer[name] = jnp.asarray(rng.normal(0, 0.3, layer[name].shape), dtype)
  return params


PLANS = {
    "dense": Plan("dense", "dense", "dense", 5, 7),
    "blocked": Plan("blocked", "blocked", "blocked", 5, 7),
    "one-block": Plan("blocked", "blocked", "blocked", 100, 7),
    "sparse": Plan("sparse", "sparse", "sparse", 5, 7),
    "mixed": Plan("sparse", "blocked", "sparse", 4, 1000),
    "mixed-dense": Plan("dense", "sparse", "blocked", 6, 5),
}


def prepared(plan, t=3, conv_layers=1, dtype=jnp.float64, ratings=None):
  ratings = rt.from_dense(rating_matrix()) if ratings is None else ratings
  data = rep.build_on_device(ratings, PLANS[plan], kernel_size=t,
                     conv_layers=conv_layers)
  return jax.tree.map(
      lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating)
      else x, data)


def assert_trees_close(a, b, rtol, atol=0.0):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


@pytest.mark.parametrize("plan", list(PLANS))
def test_pretrain_loss_and_gradient_equal_dense_reference(x64, plan):
  params = problem()
  r = jnp.asarray(rating_matrix())
  expected = jax.jit(jax.value_and_grad(model.pretrain_loss))(
      params["autoencoder"], r, r > 0, 2.0, 0.5)
  got = jax.jit(jax.value_and_grad(rep.pretrain_loss))(
      params["autoencoder"], prepared(plan), 2.0, 0.5)
  assert_trees_close(got, expected, rtol=1e-10, atol=1e-12)


@functools.partial(jax.jit, static_argnums=2)
def reference_value_and_grad(params, r, aggregation):
  """The dense reference's fine-tuning loss and gradient (compiled)."""
  return jax.value_and_grad(model.finetune_loss)(params, r, r > 0, 2.0, 0.5,
                                                 1.5, aggregation)


CONVS = [(3, 1, "weighted"), (3, 1, "mean"), (5, 2, "weighted"),
         (7, 3, "weighted"), (3, 3, "mean")]


@pytest.mark.parametrize("t,conv_layers,aggregation", CONVS)
@pytest.mark.parametrize("plan", list(PLANS))
def test_finetune_loss_gradient_and_predictions_equal_dense_reference(
    x64, plan, t, conv_layers, aggregation):
  params = problem(t, conv_layers)
  r = jnp.asarray(rating_matrix())
  data = prepared(plan, t, conv_layers)
  expected = reference_value_and_grad(params, r, aggregation)
  got = jax.jit(jax.value_and_grad(rep.finetune_loss), static_argnums=5)(
      params, data, 2.0, 0.5, 1.5, aggregation)
  assert_trees_close(got, expected, rtol=1e-10, atol=1e-12)
  items, users = np.divmod(np.arange(M_ITEMS * N_USERS), N_USERS)
  for finetuned, reference in (
      (False, jax.jit(model.autoencoder)(params["autoencoder"], r)[0]),
      (True, jax.jit(model.finetune_predictions, static_argnums=3)(
          params, r, 1.5, aggregation))):
    pred = rep.predictions_at(params, data, jnp.asarray(items), jnp.asarray(users),
                       finetuned, 1.5, aggregation)
    np.testing.assert_allclose(pred, reference.reshape(-1), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("plan", ["dense", "blocked", "sparse"])
def test_pooled_kernel_and_r_hat_equal_dense_reference(x64, plan):
  t, conv_layers = 3, 2
  params = problem(t, conv_layers)
  r = jnp.asarray(rating_matrix())
  data = prepared(plan, t, conv_layers)
  pooled = gj.item_average_pooling(model.autoencoder(params["autoencoder"],
                                                     r)[0])
  expected = [gj.global_kernel(pooled, bank, 1.5)
              for bank in params["kernel_banks"]]
  kernels = rep.global_kernels(params, data, 1.5)
  assert_trees_close(kernels, expected, rtol=1e-10, atol=1e-13)
  r_hat = np.asarray(jax.jit(model.global_kernel_ratings)(params, r, 1.5))
  if plan == "blocked":
    got = jnp.concatenate([blocked.conv_block(data.blocks, b, kernels,
                                              jnp.float64, M_ITEMS)
                           for b in range(data.blocks.n_blocks)])
    np.testing.assert_allclose(got[:M_ITEMS], r_hat, rtol=1e-10, atol=1e-12)
  elif plan == "sparse":
    values = np.asarray(sparse.conv_values(data.support, data.ratings.values,
                                           kernels)).reshape(-1)
    items = np.asarray(data.support.chunks.items).reshape(-1)
    users = np.asarray(data.support.chunks.users).reshape(-1)
    size = int(np.count_nonzero(np.asarray(data.support.chunks.values)))
    dense = np.zeros_like(r_hat)
    dense[items[:size], users[:size]] = values[:size]
    np.testing.assert_allclose(dense, r_hat, rtol=1e-10, atol=1e-12)
    assert np.all(values[size:] == 0)  # padding positions read zeros


def test_support_holds_every_cell_the_convolution_can_reach():
  r = rating_matrix()
  data = prepared("sparse", 3, 2, dtype=jnp.float32)
  keys = set(zip(np.asarray(data.support.chunks.items).reshape(-1).tolist(),
                 np.asarray(data.support.chunks.users).reshape(-1).tolist()))
  rows, cols = np.nonzero(r)
  for i, u in zip(rows, cols):  # two 3x3 layers reach 2 cells away
    for da in range(-2, 3):
      for db in range(-2, 3):
        if 0 <= i + da < M_ITEMS and 0 <= u + db < N_USERS:
          assert (i + da, u + db) in keys


@pytest.mark.parametrize("plan", ["blocked", "sparse", "mixed"])
def test_float32_matches_dense_reference_to_rounding(plan):
  params = problem(dtype=jnp.float32)
  r = jnp.asarray(rating_matrix(), jnp.float32)
  data = prepared(plan, dtype=jnp.float32)
  expected = reference_value_and_grad(params, r, "weighted")
  got = jax.jit(jax.value_and_grad(rep.finetune_loss))(
      params, data, 2.0, 0.5, 1.5)
  for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
    scale = float(jnp.max(jnp.abs(y)))
    np.testing.assert_allclose(x, y, rtol=0, atol=2e-5 * scale)


@pytest.mark.parametrize("plan", ["blocked", "sparse"])
def test_vmap_over_stacked_params_equals_loop(x64, plan):
  problems = [problem(seed=s) for s in range(3)]
  stacked = jax.tree.map(lambda *x: jnp.stack(x), *problems)
  data = prepared(plan)
  loss = jax.value_and_grad(rep.finetune_loss)
  batched = jax.jit(jax.vmap(loss, in_axes=(0, None, None, None, None)))(
      stacked, data, 2.0, 0.5, 1.5)
  one = jax.jit(loss)  # the loop compiled too (once, not op by op)
  for i, params in enumerate(problems):
    assert_trees_close(jax.tree.map(lambda x, i=i: x[i], batched),
                       one(params, data, 2.0, 0.5, 1.5), rtol=1e-10,
                       atol=1e-12)


def test_padding_entries_change_nothing(x64):
  params = problem()
  ratings = rt.from_dense(rating_matrix())
  padded = rt.pad(ratings, ratings.nnz + 9)
  loss = jax.jit(jax.value_and_grad(rep.finetune_loss))
  for plan in ("blocked", "sparse"):
    assert_trees_close(
        loss(params, prepared(plan, ratings=padded), 2.0, 0.5, 1.5),
        loss(params, prepared(plan, ratings=ratings), 2.0, 0.5, 1.5),
        rtol=1e-10, atol=1e-12)


def test_choose_plan_rule():
  common = dict(kernel_size=3, conv_layers=1, memory_bytes=24 << 30)
  # ML-100K on a CPU: dense fits and no product is below break-even.
  plan = choose_plan((1682, 943), 80000, platform="cpu", **common)
  assert plan.name == "dense"
  # ML-1M (4.5%): above the input/output break-even, and the support too.
  plan = choose_plan((3706, 6040), 900_188, platform="cpu", **common)
  assert plan.name == "dense"
  # 0.45% of ML-1M's cells: the 3x3 support ~4%, below 8%: all sparse.
  plan = choose_plan((3706, 6040), 100_000, platform="cpu", **common)
  assert plan.name == "sparse"
  # ML-10M shape: 1.3% observed, the 3x3 support ~11%: sparse input and
  # output, blocked convolution.
  plan = choose_plan((10677, 69878), 9_000_000, platform="cpu", **common)
  assert (plan.input, plan.conv, plan.output) == ("sparse", "blocked",
                                                  "sparse")
  assert 8 <= plan.block_size < 10677 and plan.block_size % 8 == 0
  # On a GPU nothing is sparse; what does not fit densely is blocked.
  plan = choose_plan((10677, 69878), 9_000_000, platform="gpu",
                         kernel_size=3, conv_layers=1, memory_bytes=1 << 30)
  assert plan.name == "blocked"
  assert choose_plan((10, 10), 5, representation="sparse",
                         platform="cpu", memory_bytes=1 << 30).name == "sparse"
  with pytest.raises(ValueError, match="representation"):
    choose_plan((10, 10), 5, representation="csr")
  spec = "input=sparse:conv=dense:output=blocked"
  plan = choose_plan((10, 10), 5, representation=spec, platform="cpu")
  assert (plan.input, plan.conv, plan.output) == ("sparse", "dense",
                                                  "blocked")
  assert plan.name == spec
  for bad in ("input=sparse:conv=dense", "input=csr:conv=dense:output=dense",
              "input=dense:input=dense:output=dense"):
    with pytest.raises(ValueError, match="input=M:conv=M:output=M"):
      choose_plan((10, 10), 5, representation=bad)
