"""The field's benchmark suite as data: Monti et al.'s three splits on
their own scales, ML-100K's folds, any rating scale mapped onto the
model's, the full test set (fallbacks for cold pairs), and the diagnosis
of a run (collapse, fine-tuning that did not help, no better than a
mean). Real files where ../shared has them, small written ones otherwise,
each against a plain NumPy reading."""

import dataclasses
import hashlib

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import glocal_jax as gj
from glocal_jax import baselines
from glocal_jax import data as gdata
from glocal_jax import diagnosis
from glocal_jax import evaluation
from glocal_jax import metrics
from glocal_jax import runs

from conftest import shared_data_dir


def write_mat(path, ratings, o_train, o_test, skip=()):
  with h5py.File(path, "w") as f:
    for name, array in (("M", ratings), ("Otraining", o_train),
                        ("Otest", o_test)):
      if name not in skip:
        f[name] = array


def small_mat(tmp_path, values):
  """A 3 x 4 Monti file: train at (0, 1) and (1, 2), test at (2, 3)."""
  ratings = np.zeros((3, 4))
  ratings[0, 1], ratings[1, 2], ratings[2, 3] = values
  o_train, o_test = np.zeros((3, 4)), np.zeros((3, 4))
  o_train[0, 1] = o_train[1, 2] = 1
  o_test[2, 3] = 1
  write_mat(tmp_path / "training_test_dataset.mat", ratings, o_train, o_test)
  return ratings


@pytest.mark.parametrize("name,counts,scale", [
    ("flixster", (23_556, 2_617), gdata.RatingScale(0.5, 5.0, 0.5)),
    ("yahoo_music", (4_802, 533), gdata.RatingScale(1.0, 100.0, 1.0)),
    ("douban", (123_202, 13_689), gdata.STARS)])
def test_monti_splits_load_whole_on_their_scales(name, counts, scale):
  path = shared_data_dir(name)
  data = gdata.load_dataset(name, path)
  assert (data.train.count(), data.test.count()) == counts
  assert data.shape == (3000, 3000) and data.scale == scale
  with h5py.File(f"{path}/training_test_dataset.mat", "r") as f:
    ratings, o_test = np.asarray(f["M"]), np.asarray(f["Otest"])
  np.testing.assert_array_equal(data.test.to_dense(), o_test * ratings)
  values = np.asarray(data.test.values)
  assert values.min() >= scale.low and values.max() <= scale.high


def test_monti_full_test_set_counts_the_cold_pairs():
  data = gdata.load_flixster(shared_data_dir("flixster"))
  train = np.asarray(data.train.to_dense())
  test = data.test.to_host()
  cold_user = train.sum(axis=0)[test.users] == 0
  cold_item = train.sum(axis=1)[test.items] == 0
  assert cold_user.sum() == 36  # kept: the published test set is 2,617
  note = [n for n in data.notes if "without a training rating" in n]
  assert note and note[0].startswith(
      f"{cold_user.sum()} test rating(s) by "
      f"{np.unique(test.users[cold_user]).size} user(s) and "
      f"{cold_item.sum()} rating(s)")
  counts = evaluation.evaluated_counts(data)
  assert counts == {"test_ratings": 2617, "test_cold_users": 36,
                    "test_cold_items": int((cold_item & ~cold_user).sum())}


def test_monti_scales_are_checked_and_overridden(tmp_path):
  small_mat(tmp_path, (4.5, 1.0, 2.5))
  data = gdata.load_flixster(str(tmp_path))
  assert data.scale == gdata.HALF_STARS and data.test.count() == 1
  with pytest.raises(gdata.DataFormatError, match="4.5 is not on the scale 1"):
    gdata.load_douban(str(tmp_path))
  # An override applies before the checks.
  assert gdata.load_douban(str(tmp_path), scale=gdata.HALF_STARS).scale == (
      gdata.HALF_STARS)
  small_mat(tmp_path, (4.3, 1.0, 2.5))
  with pytest.raises(gdata.DataFormatError, match="4.3 is not on the scale "
                     "0.5..5 in steps of 0.5"):
    gdata.load_flixster(str(tmp_path))
  small_mat(tmp_path, (100.0, 1.0, 37.0))
  assert gdata.load_yahoo_music(str(tmp_path)).test.values.tolist() == [37.0]
  small_mat(tmp_path, (101.0, 1.0, 37.0))
  with pytest.raises(gdata.DataFormatError, match="101 is not on the scale"):
    gdata.load_yahoo_music(str(tmp_path))
  with pytest.raises(ValueError, match="not one of Monti"):
    gdata.load_monti("movielens", str(tmp_path))


def test_monti_file_without_a_dataset_says_which(tmp_path):
  ratings = np.ones((2, 2))
  write_mat(tmp_path / "training_test_dataset.mat", ratings, ratings,
            ratings, skip=("Otest",))
  with pytest.raises(gdata.DataFormatError, match=r"missing dataset\(s\) "
                     r"\['Otest'\]"):
    gdata.load_yahoo_music(str(tmp_path))
  with pytest.raises(gdata.MissingDataError, match="flixster: training_test"
                     "_dataset.mat not found.*download=True"):
    gdata.load_flixster(str(tmp_path / "nowhere"))


def test_monti_download_is_verified(monkeypatch, tmp_path):
  source_dir = tmp_path / "src"
  source_dir.mkdir()
  small_mat(source_dir, (4.5, 1.0, 2.5))
  raw = (source_dir / "training_test_dataset.mat").read_bytes()
  good = dataclasses.replace(
      gdata.SOURCES["flixster"],
      url=(source_dir / "training_test_dataset.mat").as_uri(),
      sha256={"training_test_dataset.mat": hashlib.sha256(raw).hexdigest()})
  monkeypatch.setitem(gdata.SOURCES, "flixster", good)
  data = gdata.load_flixster(str(tmp_path / "got"), download=True)
  assert data.test.values.tolist() == [2.5]
  bad = dataclasses.replace(good, sha256={"training_test_dataset.mat":
                                          "0" * 64})
  monkeypatch.setitem(gdata.SOURCES, "flixster", bad)
  with pytest.raises(gdata.DataFormatError, match="Checksum mismatch"):
    gdata.load_flixster(str(tmp_path / "other"), download=True)


def read_fold(path):
  rows = np.loadtxt(path, dtype=np.int64)
  return {(int(i), int(u)): float(r) for u, i, r, _ in rows}


@pytest.mark.parametrize("fold", ["2", "5", "b"])
def test_ml_100k_folds_are_the_release_files(fold):
  path = shared_data_dir("ml-100k")
  data = gdata.load_ml_100k(path, fold=fold)
  test = {(int(data.item_ids[i]), int(data.user_ids[u])): float(v)
          for i, u, v in zip(data.test.items, data.test.users,
                             data.test.values)}
  assert test == read_fold(f"{path}/u{fold}.test")
  assert data.train.count() == len(read_fold(f"{path}/u{fold}.base"))


def test_ml_100k_all_ratings_with_the_seeded_split(tmp_path):
  path = shared_data_dir("ml-100k")
  data = gdata.load_ml_100k(path, fold="all", test_fraction=0.2, seed=7)
  assert (data.train.count(), data.test.count()) == (80_000, 20_000)
  rows = np.loadtxt(f"{path}/u.data", dtype=np.int64)
  order = np.arange(rows.shape[0])
  np.random.RandomState(7).shuffle(order)
  expected = {(int(i), int(u)): float(r) for u, i, r, _ in
              rows[order[:20_000]]}
  test = {(int(data.item_ids[i]), int(data.user_ids[u])): float(v)
          for i, u, v in zip(data.test.items, data.test.users,
                             data.test.values)}
  assert test == expected
  with pytest.raises(ValueError, match="no fold '6'.*1, 2, 3, 4, 5, a, b, "
                     "all"):
    gdata.load_ml_100k(path, fold="6")
  with pytest.raises(gdata.MissingDataError, match="u3.base, u3.test not "
                     "found"):
    gdata.load_ml_100k(str(tmp_path), fold="3")


def test_rating_scale_maps_onto_the_model_and_back():
  ratings = gj.Ratings(np.array([0, 1, 2], np.int32),
                       np.array([0, 0, 1], np.int32),
                       np.array([1.0, 100.0, 0.0], np.float32), (3, 2))
  yahoo = gdata.RatingScale(1.0, 100.0, 1.0)
  mapped = yahoo.to_model_ratings(ratings)
  np.testing.assert_allclose(mapped.values, [1.0, 5.0, 0.0])  # padding: 0
  np.testing.assert_allclose(
      yahoo.from_model(np.array([1.0, 3.0, 5.0])), [1.0, 50.5, 100.0],
      rtol=1e-6)
  half = gdata.HALF_STARS
  x = np.arange(1, 11, dtype=np.float32) / 2
  np.testing.assert_allclose(half.from_model(half.to_model(x)), x, rtol=1e-6)
  np.testing.assert_allclose(half.to_model(x), 1 + 4 * (x - 0.5) / 4.5,
                             rtol=1e-6)
  # On 1..5 nothing is computed: the same arrays.
  stars = gdata.synthetic(6, 5, density=0.5).train
  assert gdata.STARS.to_model_ratings(stars) is stars
  assert gdata.RatingScale(1.0, 5.0, 0.5).from_model(x) is x


def test_a_scaled_copy_trains_to_the_same_model():
  """Ratings 2..10 (twice those on 1..5) map onto the same model ratings,
  so every epoch's RMSE and MAE are exactly twice, NDCG the same; on 1..5
  the model trains on the data's own arrays (the paper's computation)."""
  data = gdata.synthetic(40, 30, density=0.3, seed=2)
  assert data.scale.to_model_ratings(data.train) is data.train
  double = lambda r: dataclasses.replace(r, values=r.values * 2)
  scaled = dataclasses.replace(data, train=double(data.train),
                               test=double(data.test),
                               scale=gdata.RatingScale(2.0, 10.0, 2.0))
  config = gj.preset("ml-100k", hidden=(8, 8), pretrain_epochs=2,
                     finetune_epochs=2, pretrain_maxiter=2,
                     finetune_maxiter=2)
  results = [runs.evaluated_run(config, d, 0, log=lambda _: None).to_dict()
             for d in (data, scaled)]
  for a, b in zip(*(r["history"] for r in results), strict=True):
    np.testing.assert_allclose(b["metrics"]["test_rmse"],
                               2 * a["metrics"]["test_rmse"], rtol=1e-5)
    np.testing.assert_allclose(b["metrics"]["test_mae"],
                               2 * a["metrics"]["test_mae"], rtol=1e-5)
    np.testing.assert_allclose(b["metrics"]["test_ndcg"],
                               a["metrics"]["test_ndcg"], rtol=1e-5)


def test_fallback_predictions_match_numpy():
  train = gj.Ratings(np.array([0, 0, 1, 3], np.int32),
                     np.array([0, 1, 0, 1], np.int32),
                     np.array([4.0, 2.0, 5.0, 1.0], np.float32), (4, 3))
  items = np.array([0, 1, 2, 2, 3, 1], np.int32)
  users = np.array([1, 1, 0, 2, 2, 2], np.int32)
  model = np.full(6, 9.0, np.float32)
  got = baselines.fallback_predictions(jnp.asarray(model), train, items,
                                       users)
  dense = np.asarray(train.to_dense())
  observed = dense > 0
  expected = []
  for i, u, p in zip(items, users, model):
    item_warm, user_warm = observed[i].any(), observed[:, u].any()
    if item_warm and user_warm:
      expected.append(p)
    elif item_warm:
      expected.append(dense[i][observed[i]].mean())
    elif user_warm:
      expected.append(dense[:, u][observed[:, u]].mean())
    else:
      expected.append(dense[observed].mean())
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  cold_user, cold_item = baselines.cold_entries(train, items, users)
  assert np.asarray(cold_user).tolist() == [False] * 3 + [True] * 3
  assert np.asarray(cold_item).tolist() == [False, False, True, True, False,
                                            False]


def test_item_spread_matches_numpy():
  rng = np.random.default_rng(0)
  targets = gdata.synthetic(30, 20, density=0.4, seed=4).test
  pred = rng.normal(3, 1, targets.nnz).astype(np.float32)
  users = np.asarray(targets.users)
  means = {u: pred[users == u].mean() for u in np.unique(users)}
  expected = np.sqrt(np.mean([(p - means[u]) ** 2 for p, u in
                              zip(pred, users)]))
  np.testing.assert_allclose(metrics.item_spread(pred, targets), expected,
                             rtol=1e-5)
  per_user = np.array([means[u] for u in users], np.float32)
  assert float(metrics.item_spread(per_user, targets)) < 1e-6


def entry(phase, epoch, valid, test, spread=0.5):
  return gj.EpochRecord(phase, epoch, 0.0, 0, 0, 0.0, metrics={
      "test_rmse": test, "test_mae": test, "test_ndcg": 0.9,
      "valid_rmse": valid, "test_spread": spread})


def test_selection_spans_both_phases_and_diagnosis_says_why():
  means = {"valid": {"global": 1.2, "item": 1.1, "user": 1.0}}
  history = [entry("pretrain", 1, 0.95, 0.96), entry("pretrain", 2, 0.90, 0.91),
             entry("finetune", 1, 0.93, 0.92, spread=1e-6),
             entry("finetune", 2, 0.94, 0.95, spread=1e-6)]
  summary = diagnosis.summarise(history)
  assert summary.selected == {"rmse": 0.91, "mae": 0.91, "ndcg": 0.9,
                              "phase": "pretrain", "epoch": 2,
                              "valid_rmse": 0.90}
  assert summary.best["rmse"] == 0.92  # the paper's, over fine-tuning
  found = diagnosis.diagnose(summary, history, means, gdata.STARS)
  assert len(found) == 2
  assert "final model (finetune epoch 2) has collapsed" in found[0]
  assert "fine-tuning never beat pre-training" in found[1]
  assert "pre-trained model is selected" in found[1]
  healthy = [entry("pretrain", 1, 0.95, 0.96), entry("finetune", 1, 0.9, 0.9)]
  assert diagnosis.diagnose(diagnosis.summarise(healthy), healthy, means,
                            gdata.STARS) == []
  worse = [entry("pretrain", 1, 1.05, 1.0), entry("finetune", 1, 1.01, 1.0)]
  found = diagnosis.diagnose(diagnosis.summarise(worse), worse, means,
                             gdata.STARS)
  assert found == ["the selected model's valid RMSE 1.0100 is no better "
                   "than the user-mean predictor's 1.0000 on the same "
                   "ratings: the model has learnt nothing a mean does not "
                   "know (its hyper-parameters need tuning on a validation "
                   "split)."]


def test_a_failed_fine_tuning_keeps_the_pre_trained_model():
  """A huge dot_scale saturates the fine-tuned encoder: every fine-tuning
  epoch is worse on validation than pre-training, so the honest protocol
  selects the best pre-training epoch, and says so."""
  data = gdata.split_validation(
      gdata.synthetic(80, 60, density=0.4, seed=1, rank=2), 0.1, seed=0)
  config = gj.preset("ml-100k", hidden=(16, 16), lambda_2=1.0,
                     pretrain_epochs=4, finetune_epochs=2,
                     pretrain_maxiter=10, finetune_maxiter=10,
                     dot_scale=1e5)
  lines = []
  result = runs.evaluated_run(config, data, 0, log=lines.append).to_dict()
  history = result["history"]
  pre = min((h for h in history if h["phase"] == "pretrain"),
            key=lambda h: h["metrics"]["valid_rmse"])
  assert all(h["metrics"]["valid_rmse"] > pre["metrics"]["valid_rmse"]
             for h in history if h["phase"] == "finetune")
  selected = result["selected"]
  assert (selected["phase"], selected["epoch"]) == ("pretrain", pre["epoch"])
  assert selected["rmse"] == pre["metrics"]["test_rmse"]
  assert result["best"]["rmse"] > selected["rmse"]  # the paper's: fine-tuned
  warning = [w for w in result["warnings"]
             if "fine-tuning never beat pre-training" in w]
  assert warning and f"warning: {warning[0]}" in lines


def test_a_collapsed_model_is_measured_and_named():
  """With the first layer's weights zeroed the hidden code is the same for
  every item, so the predictions are one value per user: item spread 0,
  and the diagnosis names the collapse."""
  data = gdata.synthetic(30, 20, density=0.4, seed=3)
  config = gj.preset("ml-100k", hidden=(8, 8))
  params = gj.training.initial_params(config, jax.random.PRNGKey(0),
                                      data.shape)
  # Outputs around 3, inside the clipped range 1..5.
  params["autoencoder"][-1]["b"] = params["autoencoder"][-1]["b"] + 3.0
  train_data = evaluation.training_data(config, data.train, data.scale)
  healthy = evaluation.split_metrics(config, params, train_data, data,
                                     "pretrain")
  first = params["autoencoder"][0]["w"]
  params["autoencoder"][0]["w"] = jnp.zeros_like(first)
  collapsed = evaluation.split_metrics(config, params, train_data, data,
                                       "pretrain")
  assert healthy["test_spread"] > 1e-3 and collapsed["test_spread"] < 1e-6
  history = [gj.EpochRecord("pretrain", 1, 0.0, 0, 0, 0.0,
                            metrics=collapsed)]
  found = diagnosis.diagnose(diagnosis.summarise(history), history, {},
                             data.scale)
  assert len(found) == 1 and "(pretrain epoch 1) has collapsed" in found[0]
  # Trained on every rating (no test, no validation split): the spread at
  # the training ratings tells it.
  alone = dataclasses.replace(data, test=gj.ratings.take(
      data.test.to_host(), np.zeros(0, np.int64)))
  collapsed = evaluation.split_metrics(config, params, train_data, alone,
                                       "pretrain")
  assert np.isnan(collapsed["test_spread"])
  assert "train_spread" not in healthy  # a test split tells it there
  params["autoencoder"][0]["w"] = first
  healthy = evaluation.split_metrics(config, params, train_data, alone,
                                     "pretrain")
  assert collapsed["train_spread"] < 1e-6 < healthy["train_spread"]
  history = [gj.EpochRecord("pretrain", 1, 0.0, 0, 0, 0.0,
                            metrics=collapsed)]
  found = diagnosis.diagnose(diagnosis.summarise(history), history, {},
                             data.scale)
  assert len(found) == 1 and "(pretrain epoch 1) has collapsed" in found[0]


def test_user_based_orientation_is_the_transposed_model():
  """orientation="users" is the item-based model of the transposed matrix
  (its training, the same losses and RMSE as items on data.transposed():
  tests/test_fitting.py), while NDCG stays per user: equal to NumPy-ordered
  NDCG of the same predictions on the original test set."""
  data = gdata.synthetic(30, 40, density=0.3, seed=6)
  flipped = data.transposed()
  assert flipped.shape == (40, 30) and flipped.test.count() == (
      data.test.count())
  np.testing.assert_array_equal(flipped.test.to_dense(),
                                np.asarray(data.test.to_dense()).T)
  config = gj.preset("ml-100k", hidden=(8, 8), pretrain_epochs=1,
                     finetune_epochs=1, pretrain_maxiter=2,
                     finetune_maxiter=2)
  # NDCG per original user, from the item-based model of the transposed
  # matrix (its own rows are the users).
  user_config = config.replace(orientation="users")
  params = gj.training.initial_params(user_config, jax.random.PRNGKey(0),
                                      data.shape)
  params["autoencoder"][-1]["b"] = params["autoencoder"][-1]["b"] + 3.0
  train_data = evaluation.training_data(user_config, data.train, data.scale)
  got = evaluation.split_metrics(user_config, params, train_data, data,
                                 "pretrain")
  item_based = gj.prepare(config, flipped.train)
  pred = np.asarray(gj.predict(config, params, item_based, "pretrain",
                               users=flipped.test.users,
                               items=flipped.test.items))
  by_pair = {(int(u), int(i)): p for i, u, p in
             zip(flipped.test.items, flipped.test.users, pred, strict=True)}
  original = np.array([by_pair[(int(i), int(u))] for i, u in
                       zip(data.test.items, data.test.users, strict=True)])
  # gj.predict honours the orientation: the same predictions from the
  # items x users indices of the user-based model's data.
  np.testing.assert_array_equal(np.asarray(gj.predict(
      user_config, params, train_data, "pretrain", users=data.test.users,
      items=data.test.items)), original)
  np.testing.assert_allclose(got["test_ndcg"],
                             float(gj.ndcg(original, data.test, 1, 5)), rtol=1e-6)
  np.testing.assert_allclose(got["test_rmse"],
                             float(gj.rmse(original, data.test, 1, 5)), rtol=1e-6)
  with pytest.raises(ValueError, match="orientation must be one of"):
    config.replace(orientation="columns")


def test_leave_one_out_test_set_trains_checkpoints_and_resumes(tmp_path):
  """One test rating per user (the common leave-one-out split): NDCG is
  undefined at every epoch; the run still checkpoints, resumes to the same
  history, and reports no best NDCG rather than dying."""
  # 40 x 30 and the config of the tests above: their compiled epochs.
  full = gdata.synthetic(40, 30, density=0.5, seed=8, test_fraction=0.0)
  host = full.train.to_host()
  first = np.unique(host.users, return_index=True)[1]  # one per user
  is_test = np.zeros(host.nnz, bool)
  is_test[first] = True
  data = dataclasses.replace(
      full, train=gj.ratings.take(host, np.flatnonzero(~is_test)),
      test=gj.ratings.take(host, first))
  config = gj.preset("ml-100k", hidden=(8, 8), pretrain_epochs=2,
                     finetune_epochs=1, pretrain_maxiter=2,
                     finetune_maxiter=2)
  quiet = lambda _: None
  whole = runs.evaluated_run(config, data, 0, log=quiet).to_dict()
  assert all(np.isnan(h["metrics"]["test_ndcg"]) for h in whole["history"])
  assert whole["best"]["ndcg"] is None and whole["best"]["ndcg_epoch"] is None
  assert whole["best"]["rmse"] == min(h["metrics"]["test_rmse"]
                                      for h in whole["history"]
                                      if h["phase"] == "finetune")
  ckpt = str(tmp_path / "ckpt")
  runs.evaluated_run(config, data, 0, log=quiet, checkpoint_dir=ckpt,
                     stop_after=2).to_dict()
  resumed = runs.evaluated_run(config, data, 0, log=quiet, checkpoint_dir=ckpt,
                               resume=True).to_dict()
  assert [h["loss"] for h in resumed["history"]] == [
      h["loss"] for h in whole["history"]]
  assert resumed["best"] == whole["best"]
