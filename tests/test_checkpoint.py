"""Checkpoints round-trip any pytree of arrays, or refuse at save time."""

import dataclasses
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import glocal_jax as gj
from glocal_jax import checkpoint
from glocal_jax import data as gdata
from glocal_jax import runs


def assert_same_tree(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    assert jnp.asarray(x).dtype == jnp.asarray(y).dtype
    np.testing.assert_array_equal(np.asarray(x, np.float64),
                                  np.asarray(y, np.float64))


def test_containers_dtypes_and_a_missing_key_come_back(tmp_path):
  tree = {"layers": ({"w": jnp.arange(6, dtype=jnp.bfloat16).reshape(2, 3)},
                     [jnp.ones(2, jnp.float16), jnp.arange(3)]),
          "0": {"1": jnp.zeros(1)},   # digit keys stay a dict
          "ints": {7: [jnp.asarray(True)]},  # int keys stay ints
          "nothing": None}
  checkpoint.save(str(tmp_path), tree, None, {"x": float("nan")})
  back = checkpoint.load(str(tmp_path))
  assert_same_tree(back.params, tree)
  assert back.params["nothing"] is None
  assert isinstance(back.params["layers"], tuple)
  assert back.key is None and np.isnan(back.meta["x"])


def test_restore_into_a_template_from_eval_shape(tmp_path):
  class Layer(typing.NamedTuple):
    w: jax.Array
    b: jax.Array

  init = lambda key: [Layer(jax.random.normal(key, (3, 2)), jnp.zeros(2))]
  params = init(jax.random.PRNGKey(0))
  # Saved as plain containers, restored into the user's own node types.
  plain = [{"w": p.w, "b": p.b} for p in params]
  checkpoint.save(str(tmp_path), plain, jax.random.PRNGKey(1), {})
  template = jax.eval_shape(init, jax.random.PRNGKey(0))
  back = checkpoint.load(str(tmp_path), template=template)
  assert isinstance(back.params[0], Layer)
  np.testing.assert_array_equal(back.params[0].w, params[0].w)
  wrong = jax.eval_shape(lambda: [Layer(jnp.zeros((2, 3)), jnp.zeros(2))])
  with pytest.raises(ValueError, match=r"0/w: the checkpoint's array "
                     r"is \(3, 2\), the template's \(2, 3\)"):
    checkpoint.load(str(tmp_path), template=wrong)


def test_what_cannot_round_trip_is_refused_before_writing(tmp_path):
  class Pair(typing.NamedTuple):
    a: jax.Array

  with pytest.raises(TypeError, match="cannot checkpoint a Pair"):
    checkpoint.save(str(tmp_path), {"p": Pair(jnp.ones(2))}, None, {})
  with pytest.raises(TypeError, match="meta must be JSON"):
    checkpoint.save(str(tmp_path), {"w": jnp.ones(2)}, None,
                    {"when": object()})
  with pytest.raises(TypeError, match="raw key data"):
    checkpoint.save(str(tmp_path), {"w": jnp.ones(2)}, jax.random.key(0), {})
  assert not checkpoint.exists(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="holds no checkpoint.npz"):
    checkpoint.load(str(tmp_path))


def test_model_parameters_round_trip_exactly(tmp_path):
  params = gj.init_params(jax.random.PRNGKey(0), 5, 4, hidden=(3,))
  checkpoint.save(str(tmp_path), params, jax.random.PRNGKey(2), {})
  assert_same_tree(checkpoint.load(str(tmp_path)).params, params)


def test_the_data_fingerprint_names_the_ids():
  """Two files with the same matrix under other raw ids are other data: a
  run resumed on one from the other's checkpoint is refused."""
  data = gdata.synthetic(12, 9, density=0.5, seed=0)
  renamed = dataclasses.replace(data, user_ids=data.user_ids + 100)
  assert runs.fingerprint(data) != runs.fingerprint(renamed)
  assert runs.fingerprint(data) == runs.fingerprint(
      dataclasses.replace(data))
