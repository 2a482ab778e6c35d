"""Metrics on triplets against plain loops over dense matrices (docs/model.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import pytest

import glocal_jax as gj
from glocal_jax import ratings as rt


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
  targets = rt.from_dense(target)
  np.testing.assert_allclose(gj.ndcg(targets.gather(pred), targets, 1, 5),
                             ref.ndcg_loop(pred, target, mask), rtol=1e-5)


def test_ndcg_ignores_padding_entries():
  pred, target, mask = random_case(1)
  targets = rt.from_dense(target)
  padded = rt.pad(targets, targets.nnz + 7)
  np.testing.assert_allclose(
      gj.ndcg(padded.gather(pred), padded, 1, 5), ref.ndcg_loop(pred, target, mask),
      rtol=1e-5)
  np.testing.assert_allclose(gj.rmse(padded.gather(pred), padded),
                             gj.rmse(targets.gather(pred), targets))


def test_ndcg_ties_keep_item_order():
  # Both items predicted 5 after clipping: the first item ranks first.
  targets = rt.from_dense(np.array([[1.0], [5.0]], np.float32))
  dcg = 1 / np.log2(2) + 31 / np.log2(3)
  idcg = 31 / np.log2(2) + 1 / np.log2(3)
  np.testing.assert_allclose(gj.ndcg(jnp.array([7.0, 6.0]), targets, 1, 5),
                             dcg / idcg, rtol=1e-6)


def test_rmse_and_mae_clip_predictions():
  targets = rt.from_dense(np.array([[1.0, 4.0, 0.0]], np.float32))
  pred = jnp.array([0.0, 6.0])
  np.testing.assert_allclose(gj.rmse(pred, targets, 1, 5), np.sqrt(0.5))
  np.testing.assert_allclose(gj.mae(pred, targets, 1, 5), 0.5)
  # No scale is assumed: without bounds nothing is clipped.
  np.testing.assert_allclose(gj.rmse(pred, targets), np.sqrt(2.5))
  np.testing.assert_allclose(gj.mae(pred, targets), 1.5)


def test_metrics_take_plain_arrays_and_any_scale():
  # YahooMusic-like ratings on 1..100: an item mean of 70 is not clipped
  # to 5 (the old default), and RMSE/MAE take plain arrays of ratings.
  values = np.array([60.0, 80.0, 70.0, 10.0], np.float32)
  pred = jnp.full(4, 70.0)
  expected = np.sqrt(np.mean((70.0 - values) ** 2))
  np.testing.assert_allclose(gj.rmse(pred, values), expected, rtol=1e-6)
  np.testing.assert_allclose(gj.rmse(pred, values, 1, 100), expected,
                             rtol=1e-6)
  np.testing.assert_allclose(gj.mae(pred, jnp.asarray(values)),
                             np.mean(np.abs(70.0 - values)), rtol=1e-6)
  with pytest.raises(ValueError, match="one entry each"):
    gj.rmse(pred[:3], values)
  with pytest.raises(TypeError, match="ndcg needs the targets' users"):
    gj.ndcg(pred, values)


def test_metrics_match_numpy_on_random_data():
  pred, target, mask = random_case(7)
  err = (np.clip(pred, 1, 5) - target)[mask > 0]
  targets = rt.from_dense(target)
  out = gj.evaluate(targets.gather(pred), targets, 1, 5)
  np.testing.assert_allclose(out["rmse"], np.sqrt(np.mean(err ** 2)),
                             rtol=1e-6)
  np.testing.assert_allclose(out["mae"], np.mean(np.abs(err)), rtol=1e-6)


def test_metrics_vmap_over_predictions():
  _, target, mask = random_case(2)
  targets = rt.from_dense(target)
  preds = [random_case(s)[0] for s in range(3)]
  batched = jax.vmap(gj.evaluate, in_axes=(0, None, None, None))(
      jnp.stack([targets.gather(p) for p in preds]), targets, 1.0, 5.0)
  for i, pred in enumerate(preds):
    np.testing.assert_allclose(batched["ndcg"][i],
                               ref.ndcg_loop(pred, target, mask), rtol=1e-5)
