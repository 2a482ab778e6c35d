"""Kernels (Eqs. 2-6) against NumPy, finite differences, jit and vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import pytest

import glocal_jax as gj


def directional_fd_check(fun, args, argnum=0, eps=1e-6, seed=0, rtol=1e-5):
  """Compares ``jax.grad`` with a central finite difference along a random
  direction (float64).

  Not ``jax.test_util.check_grads``: it checks reverse mode against forward
  mode, which the ``jax.custom_vjp`` convolution (kernels.global_conv) does
  not have."""
  # Compiled once (not op by op), the shifts and products in NumPy.
  grad = jax.jit(jax.grad(fun, argnums=argnum))(*args)
  fun = jax.jit(fun)
  rng = np.random.default_rng(seed)
  direction = jax.tree.map(lambda x: rng.standard_normal(x.shape),
                           args[argnum])
  def shifted(sign):
    moved = list(args)
    moved[argnum] = jax.tree.map(lambda x, d: np.asarray(x) + sign * eps * d,
                                 args[argnum], direction)
    return float(fun(*moved))
  fd = (shifted(1.0) - shifted(-1.0)) / (2 * eps)
  analytic = sum(np.vdot(np.asarray(g), d) for g, d in zip(
      jax.tree.leaves(grad), jax.tree.leaves(direction)))
  np.testing.assert_allclose(analytic, fd, rtol=rtol, atol=1e-8)


def test_local_kernel_matches_numpy():
  rng = np.random.default_rng(0)
  u = rng.normal(0, 0.4, (7, 1, 5))
  v = rng.normal(0, 0.4, (1, 4, 5))
  k = gj.local_kernel(jnp.asarray(u), jnp.asarray(v))
  assert k.shape == (7, 4)
  np.testing.assert_allclose(k, ref.local_kernel(u, v), atol=1e-6)
  assert float(k.min()) == 0.0 and float(k.max()) <= 1.0  # support is finite


def test_kernelised_weight_is_hadamard_product():
  rng = np.random.default_rng(1)
  w, u, v = rng.normal(size=(6, 3)), rng.normal(0, .3, (6, 1, 2)), rng.normal(
      0, .3, (1, 3, 2))
  np.testing.assert_allclose(gj.kernelised_weight(w, u, v),
                             w * ref.local_kernel(u, v), atol=1e-6)


@pytest.mark.parametrize("t", [1, 3, 5])
def test_global_conv_equals_numpy_same_convolution(t):
  rng = np.random.default_rng(t)
  x = rng.normal(size=(9, 7)).astype(np.float32)
  kernel = rng.normal(size=(t, t)).astype(np.float32)
  np.testing.assert_allclose(gj.global_conv(x, kernel),
                             np.maximum(ref.conv_same(x, kernel), 0),
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("t", [1, 3, 5])
def test_global_conv_without_row_padding_is_valid_over_items(t):
  rng = np.random.default_rng(10 + t)
  x = rng.normal(size=(11, 7)).astype(np.float32)
  kernel = rng.normal(size=(t, t)).astype(np.float32)
  half = t // 2
  full = np.maximum(ref.conv_same(x, kernel), 0)
  np.testing.assert_allclose(gj.global_conv(x, kernel, row_padding=False),
                             full[half:x.shape[0] - half], rtol=1e-5,
                             atol=1e-5)


def test_global_conv_gradients_match_finite_differences(x64):
  rng = np.random.default_rng(11)
  x = jnp.asarray(rng.uniform(0, 5, (9, 6)))
  kernel = jnp.asarray(rng.normal(size=(5, 5)))
  for row_padding in (True, False):
    f = lambda x, k, rp=row_padding: jnp.sum(
        jnp.square(gj.global_conv(x, k, row_padding=rp)))
    directional_fd_check(f, (x, kernel), argnum=0)
    directional_fd_check(f, (x, kernel), argnum=1, seed=1)


def test_global_conv_3x3_by_hand():
  x = np.arange(1, 10, dtype=np.float32).reshape(3, 3)
  kernel = np.zeros((3, 3), np.float32)
  kernel[0, 1] = 1.0  # picks the element above (cross-correlation)
  expected = np.array([[0, 0, 0], [1, 2, 3], [4, 5, 6]], np.float32)
  np.testing.assert_array_equal(gj.global_conv(x, kernel), expected)


@pytest.mark.parametrize("aggregation", ["weighted", "mean"])
def test_global_kernel_matches_numpy(aggregation):
  rng = np.random.default_rng(2)
  pooled, bank = rng.normal(size=8), rng.normal(size=(8, 9))
  gk = gj.global_kernel(jnp.asarray(pooled), jnp.asarray(bank), 0.5,
                        aggregation)
  np.testing.assert_allclose(gk, ref.global_kernel(pooled, bank, 0.5,
                                                   aggregation), atol=1e-6)


def test_mean_aggregation_is_plain_average_of_bank():
  bank = np.arange(2 * 25, dtype=np.float32).reshape(2, 25)
  gk = gj.global_kernel(jnp.ones(2), jnp.asarray(bank), aggregation="mean")
  np.testing.assert_array_equal(gk, ((bank[0] + bank[1]) / 2).reshape(5, 5))


def test_global_kernel_rejects_bad_input():
  with pytest.raises(ValueError, match="aggregation"):
    gj.global_kernel(jnp.ones(2), jnp.ones((2, 9)), aggregation="max")
  with pytest.raises(ValueError, match="square"):
    gj.global_kernel(jnp.ones(2), jnp.ones((2, 8)))


def test_item_average_pooling():
  x = np.arange(12.0).reshape(3, 4)
  np.testing.assert_allclose(gj.item_average_pooling(x), x.mean(axis=1))


def test_kernel_gradients_match_finite_differences(x64):
  rng = np.random.default_rng(3)
  u, v = jnp.asarray(rng.normal(0, .3, (5, 1, 3))), jnp.asarray(
      rng.normal(0, .3, (1, 4, 3)))
  w = jnp.asarray(rng.normal(size=(5, 4)))
  directional_fd_check(lambda u, v: jnp.sum(jnp.sin(gj.kernelised_weight(
      w, u, v))), (u, v), argnum=0)
  directional_fd_check(lambda u, v: jnp.sum(jnp.sin(gj.local_kernel(u, v))),
                       (u, v), argnum=1)
  x = jnp.asarray(rng.uniform(0, 5, (6, 5)))
  bank = jnp.asarray(rng.normal(size=(6, 9)))
  pooled = jnp.asarray(rng.normal(size=6))
  directional_fd_check(
      lambda b: jnp.sum(gj.global_conv(x, gj.global_kernel(pooled, b, 2.0))**2),
      (bank,))


def test_kernels_jit_and_vmap():
  rng = np.random.default_rng(4)
  x = jnp.asarray(rng.normal(size=(6, 5)), jnp.float32)
  kernels = jnp.asarray(rng.normal(size=(3, 3, 3)), jnp.float32)
  batched = jax.vmap(gj.global_conv, in_axes=(None, 0))(x, kernels)
  for i in range(3):
    np.testing.assert_allclose(batched[i], gj.global_conv(x, kernels[i]),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(jax.jit(gj.global_conv)(x, kernels[i]),
                               gj.global_conv(x, kernels[i]), rtol=1e-6,
                               atol=1e-6)
