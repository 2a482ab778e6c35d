"""Rating datasets of the paper: ML-100K, ML-1M, Douban, and synthetic data.

Every loader returns a :class:`RatingData`: train and test
:class:`~glocal_jax.ratings.Ratings` (sorted items x users triplets, never a
dense matrix) plus the raw ids of the rows and columns. Loaders take a directory; missing files raise
:class:`MissingDataError` saying how to get them, or are downloaded (and
checksum-verified where the checksum is known) with ``download=True``.

Duplicates: a (user, item) pair that appears twice in one file, or in both
the train and the test file of ML-100K, is an error (:class:`DataFormatError`
naming both lines); the real files have none, and silently keeping either
rating would hide a corrupted file or a leaked test rating.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from typing import Optional

import numpy as np

from glocal_jax import ratings as rt
from glocal_jax.ratings import Ratings

DATASETS: tuple[str, ...] = ("ml-100k", "ml-1m", "douban", "synthetic")


class MissingDataError(FileNotFoundError):
  """A dataset file is not where the loader looked."""


class DataFormatError(ValueError):
  """A dataset file does not have the expected format."""


@dataclasses.dataclass(frozen=True)
class Source:
  """Where a dataset's files come from.

  Attributes:
    url: public address of the archive or file.
    members: ``{file name: member path in the zip}``; empty when ``url`` is
      the file itself.
    sha256: known checksums of the files, by file name.
  """
  url: str
  members: dict
  sha256: dict


SOURCES: dict[str, Source] = {
    "ml-100k": Source(
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        {"u1.base": "ml-100k/u1.base", "u1.test": "ml-100k/u1.test"},
        {"u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
         "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950"}),
    "ml-1m": Source(
        "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        {"ratings.dat": "ml-1m/ratings.dat"}, {}),
    "douban": Source(
        "https://raw.githubusercontent.com/fmonti/mgcnn/master/Data/douban/"
        "training_test_dataset.mat",
        {}, {"training_test_dataset.mat":
             "1f4476321cbfe0f606e7e35d0695ca15447a1b0b2c811df130109b6cb9a067ae"}),
}


@dataclasses.dataclass(frozen=True)
class RatingData:
  """Ratings split into train / test (and optionally validation).

  Attributes:
    name: dataset name.
    train: training :class:`~glocal_jax.ratings.Ratings`, items x users.
    test: test ratings of the same matrix.
    item_ids: ``(m,)`` raw item id of each row.
    user_ids: ``(n,)`` raw user id of each column.
    valid: validation ratings carved out of the training ones (see
      :func:`split_validation`), or None.
  """
  name: str
  train: Ratings
  test: Ratings
  item_ids: np.ndarray
  user_ids: np.ndarray
  valid: Optional[Ratings] = None

  @property
  def shape(self) -> tuple[int, int]:
    """``(n_items, n_users)``."""
    return self.train.shape

  def summary(self) -> str:
    parts = [f"{self.name}: {self.shape[0]} items x {self.shape[1]} users",
             f"{self.train.count()} train"]
    if self.valid is not None:
      parts.append(f"{self.valid.count()} validation")
    parts.append(f"{self.test.count()} test ratings")
    return ", ".join(parts)


def default_data_dir(dataset: str) -> str:
  """``$GLOCAL_JAX_DATA/<dataset>`` if set, else ``~/.cache/glocal_jax/<dataset>``."""
  root = os.environ.get("GLOCAL_JAX_DATA") or os.path.join(
      os.path.expanduser("~"), ".cache", "glocal_jax")
  return os.path.join(root, dataset)


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _download(dataset: str, data_dir: str) -> None:
  """Downloads ``dataset``'s files into ``data_dir``, verified, atomically."""
  source = SOURCES[dataset]
  os.makedirs(data_dir, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=data_dir, prefix=".download-") as tmp:
    fetched = os.path.join(tmp, "fetched")
    try:
      with urllib.request.urlopen(source.url, timeout=60) as response, \
          open(fetched, "wb") as out:
        shutil.copyfileobj(response, out)
    except OSError as e:
      raise MissingDataError(
          f"Could not download {dataset} from {source.url}: {e}. Download it "
          f"by hand and put its files in {data_dir}.") from e
    if source.members:
      try:
        with zipfile.ZipFile(fetched) as archive:
          for name, member in source.members.items():
            with archive.open(member) as src, \
                open(os.path.join(tmp, name), "wb") as dst:
              shutil.copyfileobj(src, dst)
      except (zipfile.BadZipFile, KeyError) as e:
        raise DataFormatError(
            f"{source.url} is not the expected zip archive: {e}.") from e
    else:
      os.replace(fetched, os.path.join(tmp, _file_names(dataset)[0]))
    for name in _file_names(dataset):
      expected = source.sha256.get(name)
      got = _sha256(os.path.join(tmp, name))
      if expected is not None and got != expected:
        raise DataFormatError(
            f"Checksum mismatch for {name} from {source.url}: sha256 {got}, "
            f"expected {expected}. Nothing was written to {data_dir}.")
    for name in _file_names(dataset):
      os.replace(os.path.join(tmp, name), os.path.join(data_dir, name))


def _file_names(dataset: str) -> list[str]:
  source = SOURCES[dataset]
  return list(source.members) or list(source.sha256)


def _locate(dataset: str, data_dir: Optional[str], download: bool) -> str:
  """The directory holding ``dataset``'s files, downloading them if asked."""
  data_dir = data_dir or default_data_dir(dataset)
  missing = [n for n in _file_names(dataset)
             if not os.path.isfile(os.path.join(data_dir, n))]
  if missing and download:
    _download(dataset, data_dir)
  elif missing:
    raise MissingDataError(
        f"{dataset}: {', '.join(missing)} not found in {data_dir}. Pass "
        f"download=True (--download in the scripts) to fetch them from "
        f"{SOURCES[dataset].url}, or put them there by hand.")
  return data_dir


def _parse_ratings(path: str, delimiter: str) -> tuple[np.ndarray, np.ndarray]:
  """``(N, 3)`` int64 (user, item, rating) rows and their line numbers."""
  rows, lines, seen = [], [], {}
  with open(path, encoding="latin-1") as f:
    for lineno, line in enumerate(f, 1):
      text = line.rstrip("\r\n")
      if not text.strip():
        continue
      fields = text.split(delimiter)
      where = f"{path}, line {lineno}"
      if len(fields) != 4:
        raise DataFormatError(
            f"{where}: expected 4 fields 'user{delimiter}item{delimiter}"
            f"rating{delimiter}timestamp' separated by {delimiter!r}, got "
            f"{len(fields)}: {text!r}")
      try:
        user, item, rating, _ = (int(x) for x in fields)
      except ValueError:
        raise DataFormatError(
            f"{where}: fields must be integers, got {text!r}") from None
      if user <= 0 or item <= 0:
        raise DataFormatError(f"{where}: ids must be positive, got {text!r}")
      if not 1 <= rating <= 5:
        raise DataFormatError(
            f"{where}: rating must be in 1..5, got {rating}")
      if (user, item) in seen:
        raise DataFormatError(
            f"{where}: duplicate rating of item {item} by user {user} (first "
            f"at line {seen[(user, item)]}).")
      seen[(user, item)] = lineno
      rows.append((user, item, rating))
      lines.append(lineno)
  if not rows:
    raise DataFormatError(f"{path}: no ratings (the file is empty).")
  return np.asarray(rows, np.int64), np.asarray(lines, np.int64)


def _to_ratings(name: str, parts: list[np.ndarray]) -> RatingData:
  """Train and test :class:`Ratings` of ``parts`` ((N, 3) user, item,
  rating rows), with ids remapped to 0..n-1 in sorted order of the raw ids
  over all parts."""
  everything = np.concatenate(parts)
  user_ids, item_ids = np.unique(everything[:, 0]), np.unique(everything[:, 1])
  shape = (item_ids.size, user_ids.size)
  split = [rt.from_triplets(np.searchsorted(item_ids, rows[:, 1]),
                            np.searchsorted(user_ids, rows[:, 0]),
                            rows[:, 2], shape) for rows in parts]
  return RatingData(name, split[0], split[1], item_ids, user_ids)


def load_ml_100k(data_dir: Optional[str] = None,
                 download: bool = False) -> RatingData:
  """MovieLens-100K, canonical split ``u1.base`` / ``u1.test``.

  Args:
    data_dir: folder with ``u1.base`` and ``u1.test`` (default:
      :func:`default_data_dir`).
    download: fetch ``ml-100k.zip`` from GroupLens if the files are missing.

  Returns:
    1682 items x 943 users (counts from the union of both files).
  """
  data_dir = _locate("ml-100k", data_dir, download)
  base_path = os.path.join(data_dir, "u1.base")
  test_path = os.path.join(data_dir, "u1.test")
  train, train_lines = _parse_ratings(base_path, "\t")
  test, test_lines = _parse_ratings(test_path, "\t")
  train_pairs = {(u, i): n for (u, i, _), n in zip(train.tolist(), train_lines)}
  for (u, i, _), n in zip(test.tolist(), test_lines):
    if (u, i) in train_pairs:
      raise DataFormatError(
          f"{test_path}, line {n}: item {i} by user {u} is also in "
          f"{base_path}, line {train_pairs[(u, i)]} (test rating leaks into "
          "training).")
  return _to_ratings("ml-100k", [train, test])


def load_ml_1m(data_dir: Optional[str] = None, download: bool = False,
               test_fraction: float = 0.1, seed: int = 1234) -> RatingData:
  """MovieLens-1M ``ratings.dat`` with the reference's seeded split.

  Ids are remapped to 0..n-1 in sorted order of the raw ids; the rating rows
  are shuffled with NumPy's legacy RNG seeded with ``seed`` (the stream of
  ``np.random.seed(seed); np.random.shuffle(...)``, without touching the
  global RNG); the first ``int(test_fraction * n_ratings)`` shuffled rows are
  test, the rest train.

  Args:
    data_dir: folder with ``ratings.dat``.
    download: fetch ``ml-1m.zip`` from GroupLens if it is missing.
    test_fraction: share of ratings in the test set, in (0, 1).
    seed: shuffle seed (reference: 1234).

  Returns:
    3706 items x 6040 users on the real file.
  """
  if not 0.0 < test_fraction < 1.0:
    raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
  data_dir = _locate("ml-1m", data_dir, download)
  rows, _ = _parse_ratings(os.path.join(data_dir, "ratings.dat"), "::")
  order = np.arange(rows.shape[0])
  np.random.RandomState(seed).shuffle(order)
  n_test = int(test_fraction * rows.shape[0])
  return _to_ratings("ml-1m", [rows[order[n_test:]], rows[order[:n_test]]])


def load_douban(data_dir: Optional[str] = None,
                download: bool = False) -> RatingData:
  """Douban (Monti et al. 2017), ``training_test_dataset.mat`` (HDF5).

  Items x users are the arrays exactly as h5py returns them:
  ``train = Otraining * M``, ``test = Otest * M`` (the reference's double
  transpose cancels out).

  Args:
    data_dir: folder with ``training_test_dataset.mat``.
    download: fetch it from the GitHub repository fmonti/mgcnn if missing.

  Returns:
    3000 items x 3000 users; ids are 1-based positions.
  """
  import h5py  # pylint: disable=g-import-not-at-top

  data_dir = _locate("douban", data_dir, download)
  path = os.path.join(data_dir, "training_test_dataset.mat")
  try:
    f = h5py.File(path, "r")
  except OSError as e:
    raise DataFormatError(
        f"{path}: not a MATLAB v7.3 (HDF5) file ({e}).") from e
  with f:
    missing = [k for k in ("M", "Otraining", "Otest") if k not in f]
    if missing:
      raise DataFormatError(
          f"{path}: missing dataset(s) {missing}; expected 'M', 'Otraining' "
          f"and 'Otest' (found {sorted(f.keys())}).")
    ratings, o_train, o_test = (
        np.asarray(f[k], np.float32) for k in ("M", "Otraining", "Otest"))
  if not (ratings.ndim == 2 and ratings.shape == o_train.shape == o_test.shape):
    raise DataFormatError(
        f"{path}: M, Otraining, Otest must be equal 2-D shapes, got "
        f"{ratings.shape}, {o_train.shape}, {o_test.shape}.")
  train, test = o_train * ratings, o_test * ratings
  observed = np.concatenate([train[train != 0], test[test != 0]])
  if observed.size == 0 or observed.min() < 1 or observed.max() > 5:
    raise DataFormatError(f"{path}: ratings must be in 1..5.")
  return RatingData("douban", rt.from_dense(train), rt.from_dense(test),
                    np.arange(1, ratings.shape[0] + 1),
                    np.arange(1, ratings.shape[1] + 1))


def _popularity(rng: np.random.Generator, size: int,
                skew: float) -> Optional[np.ndarray]:
  """Zipf-Mandelbrot probabilities ``(rank + 0.1 * size)^-skew`` over a
  random permutation of ``size`` ids (None for uniform)."""
  if skew == 0:
    return None
  p = (np.arange(1, size + 1) + 0.1 * size) ** -float(skew)
  return rng.permutation(p / p.sum())


def synthetic(n_items: int = 300, n_users: int = 200,
              density: Optional[float] = 0.05, rank: int = 5,
              test_fraction: float = 0.1, seed: int = 0, *,
              n_ratings: Optional[int] = None, item_skew: float = 0.0,
              user_skew: float = 0.0) -> RatingData:
  """Seeded low-rank ratings in 1..5 at chosen positions, in O(N) memory.

  Positions: ``N = n_ratings`` (or ``round(density * m * n)``) distinct
  (item, user) pairs, items and users drawn independently, uniformly or
  with Zipf-like popularity: ``P(id of rank k) ~ (k + 0.1 * size)^-skew``
  over a random order of the ids. ``skew = 1.5`` gives, on any shape, a
  most-rated item with about 7x the mean count and a median of 0.49x the
  mean (ML-100K's ``u1.base``: 10x and 0.45x for items, 8x and 0.59x for
  users). Values: ``clip(round(3 + 1.25 * z / sqrt(rank)), 1, 5)`` with
  ``z = a_i . b_u`` for standard normal ``a`` and ``b`` of dimension
  ``rank``. Each rating is test with probability ``test_fraction``.

  Args:
    n_items, n_users: the matrix shape.
    density: share of observed cells (ignored when ``n_ratings`` is set).
    rank: rank of the underlying preference matrix.
    test_fraction: share of ratings held out as test, in [0, 1).
    seed: seeds everything.
    n_ratings: number of ratings (alternative to ``density``).
    item_skew, user_skew: popularity exponents (0: uniform).

  Returns:
    :class:`RatingData` named ``"synthetic"``.
  """
  if not (n_items > 0 and n_users > 0 and rank > 0):
    raise ValueError("n_items, n_users and rank must be positive.")
  cells = n_items * n_users
  if n_ratings is None:
    if density is None or not 0.0 < density <= 1.0:
      raise ValueError(f"density must be in (0, 1], got {density}.")
    n_ratings = int(round(density * cells))
  if not 0 < n_ratings <= cells:
    raise ValueError(f"n_ratings must be in [1, {cells}] for a "
                     f"{n_items} x {n_users} matrix, got {n_ratings}.")
  if not 0.0 <= test_fraction < 1.0:
    raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}.")
  if item_skew < 0 or user_skew < 0:
    raise ValueError("item_skew and user_skew must be >= 0.")
  rng = np.random.default_rng(seed)
  p_item = _popularity(rng, n_items, item_skew)
  p_user = _popularity(rng, n_users, user_skew)
  keys = np.empty(0, np.int64)
  for _ in range(100):  # draw, deduplicate, draw what is missing
    missing = n_ratings - keys.size
    if missing == 0:
      break
    draw = missing + missing // 8 + 16
    items = rng.choice(n_items, draw, p=p_item)
    users = rng.choice(n_users, draw, p=p_user)
    fresh = np.unique(items.astype(np.int64) * n_users + users)
    fresh = np.setdiff1d(fresh, keys, assume_unique=True)
    keys = np.union1d(keys, rng.permutation(fresh)[:missing])
  else:
    raise ValueError(f"could not draw {n_ratings} distinct cells of a "
                     f"{n_items} x {n_users} matrix with these skews; ask "
                     "for fewer ratings or less skew.")
  items, users = np.divmod(keys, n_users)
  a = rng.standard_normal((n_items, rank), np.float32)
  b = rng.standard_normal((n_users, rank), np.float32)
  values = np.empty(keys.size, np.float32)
  for lo in range(0, keys.size, 1 << 22):  # bounded (chunk, rank) products
    z = np.einsum("kr,kr->k", a[items[lo:lo + (1 << 22)]],
                  b[users[lo:lo + (1 << 22)]])
    values[lo:lo + z.size] = np.clip(np.round(3 + 1.25 * z / np.sqrt(rank)),
                                     1, 5)
  is_test = rng.random(keys.size) < test_fraction
  shape = (n_items, n_users)
  split = [Ratings(items[sel].astype(np.int32), users[sel].astype(np.int32),
                   values[sel], shape) for sel in (~is_test, is_test)]
  return RatingData("synthetic", split[0], split[1],
                    np.arange(1, n_items + 1), np.arange(1, n_users + 1))


def _split_ratings(ratings: Ratings, fraction: float, seed: int
                   ) -> tuple[Ratings, Ratings]:
  """A seeded ``fraction`` of the entries moved out: ``(kept, moved)``."""
  k = ratings.nnz
  chosen = np.random.default_rng(seed).permutation(k)[
      :int(round(fraction * k))]
  moved = np.zeros(k, bool)
  moved[chosen] = True
  return rt.take(ratings, np.flatnonzero(~moved)), rt.take(ratings, chosen)


def split_validation(data: RatingData, fraction: float = 0.05,
                     seed: int = 0) -> RatingData:
  """Holds out a seeded ``fraction`` of the training ratings as validation.

  The test set is untouched; the model never sees the validation ratings.
  The entries chosen are those of the item-major order (the order of
  ``np.nonzero`` on the dense matrix), so splits match earlier versions.
  """
  if not 0.0 < fraction < 1.0:
    raise ValueError(f"validation fraction must be in (0, 1), got {fraction}.")
  train, valid = _split_ratings(data.train, fraction, seed)
  return dataclasses.replace(data, train=train, valid=valid)


def subsample_train(data: RatingData, ratio: float, seed: int = 0
                    ) -> RatingData:
  """Keeps a seeded share ``ratio`` of the training ratings (paper Fig. 2)."""
  if not 0.0 < ratio <= 1.0:
    raise ValueError(f"training ratio must be in (0, 1], got {ratio}.")
  if ratio == 1.0:
    return data
  _, kept = _split_ratings(data.train, ratio, seed)
  return dataclasses.replace(data, train=kept)


def load_dataset(name: str, data_dir: Optional[str] = None,
                 download: bool = False, **kwargs) -> RatingData:
  """Loads ``name`` (one of :data:`DATASETS`); ``kwargs`` go to its loader."""
  loaders = {"ml-100k": load_ml_100k, "ml-1m": load_ml_1m,
             "douban": load_douban}
  if name == "synthetic":
    return synthetic(**kwargs)
  if name not in loaders:
    raise ValueError(f"Unknown dataset {name!r}; known: {DATASETS}.")
  return loaders[name](data_dir, download, **kwargs)
