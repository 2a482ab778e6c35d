"""Loaders on the shared data and on small files written here."""

import dataclasses
import hashlib
import os
import zipfile

import h5py
import numpy as np
import pytest

from glocal_jax import data as gdata

from conftest import shared_data_dir


def test_ml_100k_shared_files():
  data = gdata.load_ml_100k(shared_data_dir("ml-100k"))
  assert data.shape == (1682, 943)
  assert data.train.count() == 80000 and data.train.nnz == 80000
  assert data.test.count() == 20000
  assert data.train.values.dtype == np.float32
  assert data.train.items.dtype == np.int32
  # u1.base's first line is "1\t1\t5\t874965758": user 1, item 1, rating 5.
  assert (data.train.items[0], data.train.users[0],
          data.train.values[0]) == (0, 0, 5)
  assert data.user_ids[0] == 1 and data.item_ids[-1] == 1682
  keys = data.train.items.astype(np.int64) * 943 + data.train.users
  assert np.all(np.diff(keys) > 0)  # sorted by item, then user; no duplicate


def test_douban_shared_file():
  data = gdata.load_douban(shared_data_dir("douban"))
  assert data.shape == (3000, 3000)
  assert data.train.count() == 123202
  assert data.test.count() == 13689
  assert set(np.unique(data.train.values)) <= {1, 2, 3, 4, 5}


def write_ml_1m(path, rows):
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, "ratings.dat"), "w") as f:
    for u, i, r in rows:
      f.write(f"{u}::{i}::{r}::97830{u}{i}\n")


def reference_ml_1m_split(rows, frac=0.1, seed=1234):
  """The authors' loop: legacy global RNG, dict id maps, row-wise writes."""
  rows = np.asarray(rows)
  udict = {u: k for k, u in enumerate(np.unique(rows[:, 0]).tolist())}
  mdict = {m: k for k, m in enumerate(np.unique(rows[:, 1]).tolist())}
  state = np.random.get_state()
  np.random.seed(seed)
  idx = np.arange(len(rows))
  np.random.shuffle(idx)
  np.random.set_state(state)
  train = np.zeros((len(mdict), len(udict)), np.float32)
  test = np.zeros_like(train)
  for k in range(len(rows)):
    u, m, r = rows[idx[k]]
    (test if k < int(frac * len(rows)) else train)[mdict[m], udict[u]] = r
  return train, test


def random_rows(seed=0, n=400):
  rng = np.random.default_rng(seed)
  pairs = set()
  while len(pairs) < n:
    pairs.add((int(rng.integers(1, 60) * 3), int(rng.integers(1, 90) * 7)))
  return [(u, i, int(rng.integers(1, 6))) for u, i in sorted(pairs)]


def test_ml_1m_split_matches_reference(tmp_path):
  rows = random_rows()
  write_ml_1m(tmp_path, rows)
  data = gdata.load_ml_1m(str(tmp_path))
  train, test = reference_ml_1m_split(rows)
  np.testing.assert_array_equal(data.train.to_dense(), train)
  np.testing.assert_array_equal(data.test.to_dense(), test)
  assert data.test.count() == 40
  np.testing.assert_array_equal(data.user_ids,
                                np.unique([r[0] for r in rows]))
  other = gdata.load_ml_1m(str(tmp_path), test_fraction=0.2, seed=7)
  train, test = reference_ml_1m_split(rows, 0.2, 7)
  np.testing.assert_array_equal(other.test.to_dense(), test)


@pytest.mark.parametrize("line,message", [
    ("1::2::3", "expected 4 fields"),
    ("1\t2\t3\t4", "expected 4 fields"),
    ("1::x::3::4", "must be a non-negative integer id, got 'x'"),
    ("1::2::6::4", "rating 6 is not on the scale 1..5"),
    ("1::2::3.5::4", "rating 3.5 is not on the scale 1..5 in steps of 1"),
    ("1::2::three::4", "must be a number, got 'three'"),
    ("0::2::3::4", "ids must be positive"),
])
def test_ml_1m_malformed_lines_name_file_and_line(tmp_path, line, message):
  with open(tmp_path / "ratings.dat", "w") as f:
    f.write("1::1::5::978300760\n" + line + "\n")
  with pytest.raises(gdata.DataFormatError, match=message) as info:
    gdata.load_ml_1m(str(tmp_path))
  assert "ratings.dat, line 2" in str(info.value)


def test_empty_and_duplicate_files_are_rejected(tmp_path):
  (tmp_path / "ratings.dat").write_text("")
  with pytest.raises(gdata.DataFormatError, match="empty"):
    gdata.load_ml_1m(str(tmp_path))
  (tmp_path / "ratings.dat").write_text(
      "1::1::5::978300760\n2::1::3::978300761\n1::1::4::978300762\n")
  with pytest.raises(gdata.DataFormatError, match="duplicate.*line 1"):
    gdata.load_ml_1m(str(tmp_path))


def test_ml_100k_test_rating_also_in_train_is_rejected(tmp_path):
  (tmp_path / "u1.base").write_text("1\t1\t5\t1\n1\t2\t3\t1\n")
  (tmp_path / "u1.test").write_text("2\t1\t4\t1\n1\t2\t3\t1\n")
  with pytest.raises(gdata.DataFormatError, match="u1.test, line 2"):
    gdata.load_ml_100k(str(tmp_path))


def test_missing_files_say_what_to_do(tmp_path):
  with pytest.raises(gdata.MissingDataError, match="download=True") as info:
    gdata.load_ml_100k(str(tmp_path))
  assert "u1.base" in str(info.value) and "u1.test" in str(info.value)
  with pytest.raises(gdata.MissingDataError, match="training_test_dataset"):
    gdata.load_douban(str(tmp_path))


def test_default_data_dir_honours_environment(monkeypatch, tmp_path):
  monkeypatch.setenv("GLOCAL_JAX_DATA", str(tmp_path))
  assert gdata.default_data_dir("douban") == str(tmp_path / "douban")


def make_zip(path, members):
  with zipfile.ZipFile(path, "w") as z:
    for name, text in members.items():
      z.writestr(name, text)


def test_download_extracts_and_verifies(monkeypatch, tmp_path):
  base, test = "1\t1\t5\t1\n2\t2\t4\t1\n", "1\t2\t3\t1\n"
  archive = tmp_path / "ml-100k.zip"
  make_zip(archive, {"ml-100k/u1.base": base, "ml-100k/u1.test": test})
  sha = {n: hashlib.sha256(t.encode()).hexdigest()
         for n, t in (("u1.base", base), ("u1.test", test))}
  source = dataclasses.replace(gdata.SOURCES["ml-100k"],
                               url=archive.as_uri(), sha256=sha)
  monkeypatch.setitem(gdata.SOURCES, "ml-100k", source)
  target = tmp_path / "data"
  data = gdata.load_ml_100k(str(target), download=True)
  assert data.shape == (2, 2) and data.test.to_dense()[1, 0] == 3
  # No leftovers of the download (the parsed-array caches are expected).
  assert sorted(n for n in os.listdir(target)
                if ".glocal_jax-" not in n) == ["u1.base", "u1.test"]
  # A wrong checksum writes nothing.
  bad = dataclasses.replace(source, sha256={**sha, "u1.test": "0" * 64})
  monkeypatch.setitem(gdata.SOURCES, "ml-100k", bad)
  other = tmp_path / "other"
  with pytest.raises(gdata.DataFormatError, match="Checksum mismatch"):
    gdata.load_ml_100k(str(other), download=True)
  assert os.listdir(other) == []


def test_douban_bad_files(tmp_path):
  (tmp_path / "training_test_dataset.mat").write_bytes(b"MATLAB 5.0 not hdf5")
  with pytest.raises(gdata.DataFormatError, match="HDF5"):
    gdata.load_douban(str(tmp_path))
  with h5py.File(tmp_path / "training_test_dataset.mat", "w") as f:
    f["M"] = np.ones((3, 3))
  with pytest.raises(gdata.DataFormatError, match="Otraining"):
    gdata.load_douban(str(tmp_path))


def test_douban_orientation(tmp_path):
  ratings = np.arange(1, 13, dtype=np.float64).reshape(3, 4) % 5 + 1
  o_train = np.zeros((3, 4))
  o_train[0, 1] = 1
  o_test = np.zeros((3, 4))
  o_test[2, 3] = 1
  with h5py.File(tmp_path / "training_test_dataset.mat", "w") as f:
    f["M"], f["Otraining"], f["Otest"] = ratings, o_train, o_test
  data = gdata.load_douban(str(tmp_path))
  assert data.shape == (3, 4)
  train, test = data.train.to_dense(), data.test.to_dense()
  assert train[0, 1] == ratings[0, 1] and train.sum() == ratings[0, 1]
  assert test[2, 3] == ratings[2, 3]


def test_synthetic_validation_and_subsampling():
  data = gdata.synthetic(60, 40, density=0.3, seed=3)
  again = gdata.synthetic(60, 40, density=0.3, seed=3)
  np.testing.assert_array_equal(data.train.values, again.train.values)
  train, test = np.asarray(data.train.to_dense()), np.asarray(
      data.test.to_dense())
  assert set(np.unique(train)) <= {0, 1, 2, 3, 4, 5}
  assert data.train.count() + data.test.count() == round(0.3 * 60 * 40)
  assert not np.any((train > 0) & (test > 0))
  split = gdata.split_validation(data, 0.1, seed=1)
  n = data.train.count()
  assert split.valid.count() == round(0.1 * n)
  kept, valid = np.asarray(split.train.to_dense()), np.asarray(
      split.valid.to_dense())
  np.testing.assert_array_equal(kept + valid, train)
  assert not np.any((kept > 0) & (valid > 0))
  # The entries held out are those the dense version chose: a seeded
  # permutation of the item-major order of np.nonzero.
  rows, cols = np.nonzero(train)
  chosen = np.random.default_rng(1).permutation(rows.size)[:round(0.1 * n)]
  expected = np.zeros_like(train)
  expected[rows[chosen], cols[chosen]] = train[rows[chosen], cols[chosen]]
  np.testing.assert_array_equal(valid, expected)
  half = gdata.subsample_train(data, 0.5, seed=0)
  assert half.train.count() == round(0.5 * n)
  kept = np.asarray(half.train.to_dense())
  assert np.all((kept == 0) | (kept == train))
  with pytest.raises(ValueError):
    gdata.split_validation(data, 1.5)


def test_synthetic_at_scale_is_skewed_and_exact_in_count():
  data = gdata.synthetic(2000, 3000, n_ratings=60000, rank=4, seed=1,
                         test_fraction=0.0, item_skew=1.5, user_skew=1.5)
  assert data.train.count() == 60000 and data.test.count() == 0
  keys = data.train.items.astype(np.int64) * 3000 + data.train.users
  assert np.all(np.diff(keys) > 0)  # distinct and sorted
  for index, size in ((data.train.items, 2000), (data.train.users, 3000)):
    counts = np.bincount(index, minlength=size)
    # Zipf-Mandelbrot(1.5, 0.1 * size): the head holds ~7x the mean count.
    assert 4 < counts.max() / counts.mean() < 10
    assert 0.35 < np.median(counts) / counts.mean() < 0.65
  uniform = gdata.synthetic(2000, 3000, n_ratings=60000, seed=1)
  counts = np.bincount(uniform.train.items, minlength=2000)
  assert counts.max() / counts.mean() < 2
  with pytest.raises(ValueError, match="n_ratings"):
    gdata.synthetic(5, 5, n_ratings=26)
