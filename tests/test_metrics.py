"""Metrics against plain loops (SPEC, Evaluation)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import glocal_jax as gj
import numpy_reference as ref


def random_case(seed, m=30, n=12, density=0.3):
  rng = np.random.default_rng(seed)
  target = rng.integers(1, 6, (m, n)).astype(np.float32)
  mask = (rng.random((m, n)) < density).astype(np.float32)
  mask[:, 0] = 0  # a user with no test item
  mask[:, 1] = 0
  mask[3, 1] = 1  # a user with a single test item (skipped by NDCG)
  # Predictions outside [1, 5] (clipped) and with ties after clipping.
  pred = rng.uniform(0, 6, (m, n)).astype(np.float32)
  pred[::4] = 5.5
  return pred, target * mask, mask


@pytest.mark.parametrize("seed", range(5))
def test_ndcg_matches_reference_loop(seed):
  pred, target, mask = random_case(seed)
  np.testing.assert_allclose(gj.ndcg(pred, target, mask),
                             ref.ndcg_loop(pred, target, mask), rtol=1e-5)


def test_ndcg_ties_keep_item_order():
  # Both items predicted 5 after clipping: the first item ranks first.
  pred = np.array([[7.0], [6.0]], np.float32)
  target = np.array([[1.0], [5.0]], np.float32)
  mask = np.ones((2, 1), np.float32)
  dcg = 1 / np.log2(2) + 31 / np.log2(3)
  idcg = 31 / np.log2(2) + 1 / np.log2(3)
  np.testing.assert_allclose(gj.ndcg(pred, target, mask), dcg / idcg,
                             rtol=1e-6)


def test_rmse_and_mae_clip_predictions():
  pred = np.array([[0.0, 6.0, 3.5]], np.float32)
  target = np.array([[1.0, 4.0, 3.0]], np.float32)
  mask = np.array([[1.0, 1.0, 0.0]], np.float32)
  np.testing.assert_allclose(gj.rmse(pred, target, mask), np.sqrt(0.5))
  np.testing.assert_allclose(gj.mae(pred, target, mask), 0.5)


def test_metrics_match_numpy_on_random_data():
  pred, target, mask = random_case(7)
  err = (np.clip(pred, 1, 5) - target)[mask > 0]
  out = gj.evaluate(pred, target, mask)
  np.testing.assert_allclose(out["rmse"], np.sqrt(np.mean(err ** 2)),
                             rtol=1e-6)
  np.testing.assert_allclose(out["mae"], np.mean(np.abs(err)), rtol=1e-6)


def test_metrics_vmap():
  cases = [random_case(s) for s in range(3)]
  stacked = [jnp.stack(x) for x in zip(*cases)]
  batched = jax.vmap(gj.evaluate)(*stacked)
  for i, case in enumerate(cases):
    np.testing.assert_allclose(batched["ndcg"][i], gj.ndcg(*case), rtol=1e-6)
