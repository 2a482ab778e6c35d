"""The L-BFGS epochs as a public API: any loss over any float pytree,
keyword arguments, auxiliary outputs; stacked keys in train."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import glocal_jax as gj
from glocal_jax import data as gdata


def quadratic(params, target, *, weight=1.0):
  """Minimum at params["x"] == target; aux: the residual."""
  residual = params["x"] - target
  return weight * jnp.sum(residual ** 2), {"residual": residual}


@pytest.mark.parametrize("make", [
    lambda f: gj.optax_lbfgs_epoch(f, 20, has_aux=True),
    lambda f: gj.jaxopt_lbfgsb_epoch(f, 20, has_aux=True),
    lambda f: gj.scipy_lbfgsb_epoch(f, 20, has_aux=True)])
def test_epochs_take_keyword_arguments_and_return_the_aux(make):
  target = jnp.array([1.0, -2.0, 3.0])
  epoch = make(quadratic)
  params, stats = epoch({"x": jnp.zeros(3)}, target, weight=2.0)
  np.testing.assert_allclose(params["x"], target, atol=1e-4)
  # The aux is the loss's at the returned parameters, as a NumPy loss says.
  np.testing.assert_allclose(stats.aux["residual"],
                             np.asarray(params["x"]) - np.asarray(target),
                             atol=1e-6)
  np.testing.assert_allclose(stats.loss, 2.0 * np.sum(
      (np.asarray(params["x"]) - np.asarray(target)) ** 2), atol=1e-6)


def test_without_aux_the_stats_hold_none_and_vmap_over_an_argument_works():
  loss = lambda p, target: jnp.sum((p["x"] - target) ** 2)
  epoch = gj.optax_lbfgs_epoch(loss, 10)
  targets = jnp.array([[1.0, 2.0], [-3.0, 0.5]])
  params, stats = jax.vmap(epoch, in_axes=(None, 0))({"x": jnp.zeros(2)},
                                                      targets)
  np.testing.assert_allclose(params["x"], targets, atol=1e-4)
  assert stats.aux is None


def test_train_with_a_stack_of_keys_trains_each_seed():
  data = gdata.synthetic(20, 15, density=0.3, seed=1)
  config = gj.GLocalKConfig(hidden=(6,), n_dim=2, pretrain_epochs=1,
                            finetune_epochs=1, pretrain_maxiter=2,
                            finetune_maxiter=2)
  keys = jax.random.split(jax.random.PRNGKey(0), 2)
  both = gj.train(config, data.train, keys)  # batched epochs chosen for it
  one = gj.train(config, data.train, keys[1])
  np.testing.assert_allclose(both.history[-1].loss[1],
                             one.history[-1].loss, rtol=1e-4)
