"""The loaders: one function per data set, and :func:`load_dataset` by name."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from glocal_jax import ratings as rt
from glocal_jax.data import parsing
from glocal_jax.data.checks import build
from glocal_jax.data.checks import check_raw
from glocal_jax.data.checks import map_ids
from glocal_jax.data.checks import scale_of
from glocal_jax.data.checks import validate
from glocal_jax.data.container import DataFormatError
from glocal_jax.data.container import MissingDataError
from glocal_jax.data.container import RatingData
from glocal_jax.data.container import RatingScale
from glocal_jax.data.reading import RawRatings
from glocal_jax.data.reading import read_ratings
from glocal_jax.data.sources import ML_100K_FOLDS
from glocal_jax.data.sources import MONTI_DATASETS
from glocal_jax.data.sources import MONTI_FILE
from glocal_jax.data.sources import NETFLIX_FILES
from glocal_jax.data.sources import SCALES
from glocal_jax.data.sources import default_data_dir
from glocal_jax.data.sources import locate
from glocal_jax.data.splits import seeded_split
from glocal_jax.data.synthetic import synthetic
from glocal_jax.data.titles import release_titles

DATASETS: tuple[str, ...] = ("ml-100k", "ml-1m", "ml-10m", "ml-20m",
                             "ml-25m", "netflix", "douban", "flixster",
                             "yahoo_music", "file", "synthetic")
FOLDS: tuple[str, ...] = ML_100K_FOLDS + ("all",)


def load_ml_100k(data_dir: Optional[str] = None, download: bool = False,
                 fold: str = "1", *, test_fraction: float = 0.1,
                 seed: int = 1234, scale: Optional[RatingScale] = None,
                 cache_dir: Optional[str] = None) -> RatingData:
  """MovieLens-100K: one of the release's splits, or all its ratings split.

  Args:
    data_dir: folder with the release's files (default:
      :func:`default_data_dir`).
    download: fetch ``ml-100k.zip`` from GroupLens if the files are missing.
    fold: ``"1"`` (``u1.base``/``u1.test``, the paper's split) .. ``"5"``
      (the release's 5-fold cross-validation), ``"a"``/``"b"``
      (``ua``/``ub``: 10 test ratings per user), or ``"all"``: ``u.data``
      split by the reference's seeded shuffle (:func:`load_ml_1m`).
    test_fraction, seed: that shuffle's split, with ``fold="all"``.
    scale: the rating scale checked and clipped to (default 1..5).
    cache_dir: the parsed-array cache (:func:`read_ratings`).

  Returns:
    1682 items x 943 users (counts from the union of both files).

  Raises:
    ValueError: an unknown ``fold``.
  """
  fold = str(fold)
  if fold not in FOLDS:
    raise ValueError(f"ML-100K has no fold {fold!r}; the folds are "
                     f"{', '.join(FOLDS)}.")
  scale = scale or SCALES["ml-100k"]
  names = (["u.data"] if fold == "all" else
           [f"u{fold}.base", f"u{fold}.test"])
  data_dir = locate("ml-100k", data_dir, download, names)
  parts = [check_raw(read_ratings(os.path.join(data_dir, name),
                                  kinds=("int", "int", "number"),
                                  delimiter="\t", header=False,
                                  cache_dir=cache_dir),
                     scale, positive_ids=True)[0]
           for name in names]
  if fold == "all":
    parts = seeded_split(parts[0], test_fraction, seed)
  return release_titles(build("ml-100k", parts, scale), data_dir)


def _load_movielens(name: str, file_name: str, data_dir: Optional[str],
                    download: bool, test_fraction: float, seed: int,
                    delimiter: str, header: bool,
                    scale: Optional[RatingScale],
                    cache_dir: Optional[str]) -> RatingData:
  data_dir = locate(name, data_dir, download)
  scale = scale or SCALES[name]
  raw, notes = check_raw(read_ratings(
      os.path.join(data_dir, file_name), kinds=("int", "int", "number"),
      delimiter=delimiter, header=header, cache_dir=cache_dir), scale,
      positive_ids=True)
  return release_titles(
      build(name, seeded_split(raw, test_fraction, seed), scale, notes),
      data_dir)


def load_ml_1m(data_dir: Optional[str] = None, download: bool = False,
               test_fraction: float = 0.1, seed: int = 1234, *,
               scale: Optional[RatingScale] = None,
               cache_dir: Optional[str] = None) -> RatingData:
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
    scale: the rating scale checked and clipped to (default: the data
      set's, :data:`~glocal_jax.data.SCALES`).
    cache_dir: the parsed-array cache (:func:`read_ratings`).

  Returns:
    3706 items x 6040 users on the real file.
  """
  return _load_movielens("ml-1m", "ratings.dat", data_dir, download,
                         test_fraction, seed, "::", False, scale,
                         cache_dir)


def load_ml_10m(data_dir: Optional[str] = None, download: bool = False,
                test_fraction: float = 0.1, seed: int = 1234, *,
                scale: Optional[RatingScale] = None,
                cache_dir: Optional[str] = None) -> RatingData:
  """MovieLens-10M ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``,
  half stars 0.5..5), split as :func:`load_ml_1m`: 10,677 x 69,878."""
  return _load_movielens("ml-10m", "ratings.dat", data_dir, download,
                         test_fraction, seed, "::", False, scale,
                         cache_dir)


def load_ml_20m(data_dir: Optional[str] = None, download: bool = False,
                test_fraction: float = 0.1, seed: int = 1234, *,
                scale: Optional[RatingScale] = None,
                cache_dir: Optional[str] = None) -> RatingData:
  """MovieLens-20M ``ratings.csv`` (header ``userId,movieId,rating,
  timestamp``, half stars), split as :func:`load_ml_1m`: 26,744 x 138,493."""
  return _load_movielens("ml-20m", "ratings.csv", data_dir, download,
                         test_fraction, seed, ",", True, scale,
                         cache_dir)


def load_ml_25m(data_dir: Optional[str] = None, download: bool = False,
                test_fraction: float = 0.1, seed: int = 1234, *,
                scale: Optional[RatingScale] = None,
                cache_dir: Optional[str] = None) -> RatingData:
  """MovieLens-25M ``ratings.csv``, as :func:`load_ml_20m`."""
  return _load_movielens("ml-25m", "ratings.csv", data_dir, download,
                         test_fraction, seed, ",", True, scale,
                         cache_dir)


def load_netflix(data_dir: Optional[str] = None, download: bool = False, *,
                 scale: Optional[RatingScale] = None,
                 cache_dir: Optional[str] = None) -> RatingData:
  """The Netflix Prize data, the probe set as the test set.

  ``combined_data_1.txt`` .. ``combined_data_4.txt`` hold blocks headed
  ``MovieID:`` of ``CustomerID,Rating,Date`` lines; ``probe.txt`` lists
  ``MovieID:`` blocks of ``CustomerID`` lines whose ratings are in the
  combined files: those are the test set and are removed from training
  (the Prize's standard protocol). Netflix no longer distributes the data,
  so this loader reads local files only.

  Returns:
    17,770 items x 480,189 users on the real files.
  """
  data_dir = data_dir or default_data_dir("netflix")
  missing = [f for f in NETFLIX_FILES
             if not os.path.isfile(os.path.join(data_dir, f))]
  if missing:
    raise MissingDataError(
        f"netflix: {', '.join(missing)} not found in {data_dir}. Netflix no "
        "longer distributes the Prize data and it cannot be downloaded here; "
        "put the files of the Prize's training_set archive "
        "(combined_data_1.txt .. combined_data_4.txt, probe.txt) there.")
  del download
  scale = scale or SCALES["netflix"]
  parts = [read_ratings(os.path.join(data_dir, f), netflix=True,
                        cache_dir=cache_dir)
           for f in NETFLIX_FILES[:-1]]
  raw = RawRatings(data_dir, *(np.concatenate([getattr(p, k) for p in parts])
                               for k in ("users", "items", "values",
                                         "lines")))
  raw, notes = check_raw(raw, scale, positive_ids=True)
  probe_path = os.path.join(data_dir, "probe.txt")
  try:
    probe = parsing.read_netflix(probe_path, with_ratings=False)
  except parsing.ParseError as e:
    raise DataFormatError(str(e)) from None
  keys = raw.items.astype(np.int64) * (1 << 32) + raw.users
  probe_keys = probe.columns[1].astype(np.int64) * (1 << 32) + probe.columns[0]
  order = np.argsort(keys)
  at = np.searchsorted(keys[order], probe_keys)
  found = (at < keys.size) & (keys[order][np.minimum(at, keys.size - 1)]
                              == probe_keys)
  if not np.all(found):
    i = int(np.argmin(found))
    raise DataFormatError(
        f"{probe_path}, line {probe.lines[i]}: customer {probe.columns[0][i]} "
        f"has no rating of movie {probe.columns[1][i]} in the combined files.")
  is_test = np.zeros(keys.size, bool)
  is_test[order[at]] = True
  train = raw.take(np.flatnonzero(~is_test))
  test = raw.take(order[at])
  test.path = probe_path
  return build("netflix", [train, test], scale, notes)


def load_monti(name: str, data_dir: Optional[str] = None,
               download: bool = False, *,
               scale: Optional[RatingScale] = None) -> RatingData:
  """One of Monti et al.'s (2017) splits: ``training_test_dataset.mat``.

  ``name`` is ``"douban"``, ``"flixster"`` or ``"yahoo_music"``: a MATLAB
  v7.3 (HDF5) file with the ratings ``M`` and 0/1 masks ``Otraining``,
  ``Otest`` (side graphs unused). Items x users are the arrays exactly as
  h5py returns them: ``train = Otraining * M``, ``test = Otest * M`` (the
  reference's double transpose cancels out). Every test rating is kept,
  also those of users or items without a training rating (the published
  comparisons evaluate them all; a note counts them).

  Args:
    name: the data set.
    data_dir: folder with ``training_test_dataset.mat``.
    download: fetch it from the GitHub repository fmonti/mgcnn if missing
      (checksum verified).
    scale: the rating scale checked and clipped to (default: the data
      set's: 1..5 for Douban, half stars 0.5..5 for Flixster, 1..100 for
      YahooMusic).

  Returns:
    3000 items x 3000 users; ids are 1-based positions.
  """
  import h5py  # pylint: disable=g-import-not-at-top

  if name not in MONTI_DATASETS:
    raise ValueError(f"{name!r} is not one of Monti et al.'s splits "
                     f"{MONTI_DATASETS}.")
  scale = scale or SCALES[name]
  data_dir = locate(name, data_dir, download)
  path = os.path.join(data_dir, MONTI_FILE)
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
  if np.any(train < 0) or np.any(test < 0):
    raise DataFormatError(f"{path}: negative ratings in M.")
  return validate(RatingData(name, rt.from_dense(train), rt.from_dense(test),
                             np.arange(1, ratings.shape[0] + 1),
                             np.arange(1, ratings.shape[1] + 1),
                             scale=scale), scale)


def load_douban(data_dir: Optional[str] = None, download: bool = False, *,
                scale: Optional[RatingScale] = None) -> RatingData:
  """Douban (Monti et al. 2017): :func:`load_monti` ``("douban", ...)``;
  3000 x 3000, ratings 1..5."""
  return load_monti("douban", data_dir, download, scale=scale)


def load_flixster(data_dir: Optional[str] = None, download: bool = False, *,
                  scale: Optional[RatingScale] = None) -> RatingData:
  """Flixster (Monti et al. 2017): :func:`load_monti` ``("flixster",
  ...)``; 3000 x 3000, half stars 0.5..5."""
  return load_monti("flixster", data_dir, download, scale=scale)


def load_yahoo_music(data_dir: Optional[str] = None, download: bool = False,
                     *, scale: Optional[RatingScale] = None) -> RatingData:
  """YahooMusic (Monti et al. 2017): :func:`load_monti` ``("yahoo_music",
  ...)``; 3000 x 3000, integer ratings 1..100."""
  return load_monti("yahoo_music", data_dir, download, scale=scale)


COLD_USERS = ("drop", "keep")
OVERLAPS = ("error", "drop")
IDS = ("text", "numbers")


def load_ratings_file(train_file: str, test_file: Optional[str] = None, *,
                      test_fraction: float = 0.1, seed: int = 1234,
                      delimiter: Optional[str] = None,
                      header: Optional[bool] = None,
                      columns: Sequence[int] = (0, 1, 2),
                      scale: Optional[RatingScale] = None,
                      duplicates: str = "last", cold_users: str = "keep",
                      overlap: str = "error", ids: str = "text",
                      name: str = "file",
                      cache_dir: Optional[str] = None) -> RatingData:
  """Any ratings file: ``user, item, rating`` columns, ids of any kind.

  Args:
    train_file: the ratings (all of them, without ``test_file``).
    test_file: held-out ratings; None splits ``train_file`` by
      ``test_fraction`` with the reference's seeded shuffle
      (:func:`load_ml_1m`).
    test_fraction, seed: the split when there is no ``test_file``; 0 trains
      on every rating (the test set is empty: metrics are undefined, and a
      validation split, :func:`split_validation`, selects the epoch).
    delimiter: one of ``"::"``, tab, ``","``, ``";"``, ``" "`` (runs of
      spaces); None detects it.
    header: whether the first line names the columns; None detects it.
    columns: 0-based fields of the user id, the item id and the rating;
      other fields are ignored.
    scale: the rating scale; None takes the range of the ratings, in steps
      of 1 or 0.5 when they all are.
    duplicates: a ``(user, item)`` pair rated twice in a file: ``"last"``
      (the default: the last rating is kept, as a user's latest opinion; the
      notes count such pairs) or ``"error"`` (refused, naming the lines).
    cold_users: test ratings by users with no training rating: ``"keep"``
      (the default: the full test set; such a rating is predicted by the
      fallback of :func:`glocal_jax.baselines.fallback_predictions`, the
      item's training mean) or ``"drop"`` (counted in the notes). Test items
      with no training rating are always kept (predicted by the user's
      training mean).
    ids: ``"text"`` (the default: ids are text, whatever they look like, so
      ``007`` and ``7`` are two users) or ``"numbers"`` (every id must be a
      non-negative integer, and ``007`` is ``7``). The rows and columns of
      the matrix follow the ids' sorted order, which the 3x3 global
      convolution sees (neighbouring items and users): ``"numbers"`` sorts
      numerically, as the MovieLens loaders do.
    name: the data set's name in results.
    cache_dir: the parsed-array cache (:func:`read_ratings`).

  Returns:
    :class:`RatingData` whose ``user_ids``/``item_ids`` are the file's ids
    (bytes, or int64 with ``ids="numbers"``), in sorted order.

  Raises:
    MissingDataError: a file does not exist.
    DataFormatError: naming the file and line; also when the test file
      shares no user and no item with training, or when every rating is
      the same value and no ``scale`` says the data has others (nothing
      to learn, and an RMSE of 0 that means nothing).
  """
  if cold_users not in COLD_USERS:
    raise ValueError(f"cold_users must be one of {COLD_USERS}, got "
                     f"{cold_users!r}.")
  if overlap not in OVERLAPS:
    raise ValueError(f"overlap must be one of {OVERLAPS}, got {overlap!r}.")
  if ids not in IDS:
    raise ValueError(f"ids must be one of {IDS}, got {ids!r}.")
  kind = "text" if ids == "text" else "int"
  read = lambda path: read_ratings(path, columns=columns,
                                   kinds=(kind, kind, "number"),
                                   delimiter=delimiter, header=header,
                                   cache_dir=cache_dir)
  train = read(train_file)
  test = read(test_file) if test_file else None
  if scale is None:
    scale = _file_scale(train, test, columns[2])
  train, notes = check_raw(train, scale, False, duplicates)
  if test is None:
    train, test = seeded_split(train, test_fraction, seed)
  else:
    test, more = check_raw(test, scale, False, duplicates)
    notes += more
    if overlap == "drop":
      test, more = _drop_overlap(train, test)
      notes += more
  all_train = test_file is None and test_fraction == 0
  if train.values.size == 0 or (test.values.size == 0 and not all_train):
    raise DataFormatError(
        f"{train_file}: {test.values.size} test and {train.values.size} "
        "training ratings; both are needed (test_fraction=0 trains on every "
        "rating, with no test set).")
  test, more = _warm_test(train, test, cold_users,
                          test.path if test_file else
                          f"the test split of {train.path}")
  return build(name, [train, test], scale, notes + more)


# Beyond these, a rating column inferred from a file (no scale given) is a
# timestamp or an id: the scales in use (1..5, 0.5..5, 1..10, YahooMusic's
# 1..100) have at most a few hundred levels and end far below.
MAX_INFERRED_RATING = 10_000
MAX_INFERRED_LEVELS = 1_000


def _file_scale(train: RawRatings, test: Optional[RawRatings],
                field: int) -> RatingScale:
  """The scale of a rating file's values (:func:`scale_of`), refusing
  non-positive ratings (0 means 'not rated') and a single value."""
  for raw in (train, test):
    bad = np.flatnonzero(raw.values <= 0) if raw is not None else []
    if len(bad):
      raise DataFormatError(
          f"{raw.path}, line {raw.lines[bad[0]]}: rating "
          f"{raw.values[bad[0]]:g} (field {field + 1}): ratings must be "
          "positive (0 means 'not rated'). Is the rating in another field "
          "(--columns=USER,ITEM,RATING)? A scale that starts at 0 or "
          "below: add a constant to every rating first (the model maps "
          "any scale onto its own; RMSE and MAE are unchanged by the "
          "shift).")
  values = (train.values if test is None else
            np.concatenate([train.values, test.values]))
  scale = scale_of(values)
  distinct = np.unique(values).size
  if scale.high > MAX_INFERRED_RATING or distinct > MAX_INFERRED_LEVELS:
    raise DataFormatError(
        f"{train.path}: field {field + 1}, taken as the rating, holds "
        f"{distinct} distinct values from {scale.low:.10g} to "
        f"{scale.high:.10g}: "
        "a timestamp or an id, not a rating scale. Name the rating's field "
        "(--columns=USER,ITEM,RATING, 0-based), or, if these are ratings, "
        "give their scale (--rating_scale=LOW,HIGH[,STEP]).")
  if scale.low == scale.high:
    raise DataFormatError(
        f"{train.path}: every rating is {scale.low:g}: there is nothing to "
        "learn which items a user prefers (and an RMSE of 0 would mean "
        "nothing). If the data is on a wider scale, give it "
        "(--rating_scale=LOW,HIGH).")
  return scale


def _warm_test(train: RawRatings, test: RawRatings, cold_users: str,
               what: str) -> tuple[RawRatings, list[str]]:
  """``test`` checked to share a user or an item with ``train`` (``what``
  names it in the message), without its cold users' ratings when
  ``cold_users="drop"``; and the note saying so."""
  _, (train_users, test_users) = map_ids([train.users, test.users])
  _, (train_items, test_items) = map_ids([train.items, test.items])
  warm_user = np.isin(test_users, train_users)
  warm_item = np.isin(test_items, train_items)
  if test.values.size and not (np.any(warm_user) or np.any(warm_item)):
    raise DataFormatError(
        f"{what} shares no user and no item with the training ratings: "
        "nothing learnt from training applies to it (another id scheme, or "
        "the columns in another order?).")
  cold = np.flatnonzero(~warm_user)
  if not cold.size or cold_users != "drop":
    return test, []
  if cold.size == test.values.size:
    raise DataFormatError(
        f"all {cold.size} test ratings are by users with no training "
        "rating (cold users); nothing would be left to evaluate. Pass "
        "cold_users='keep' (--cold_users=keep) to keep them.")
  users = np.unique(test.users[cold]).size
  return test.take(np.flatnonzero(warm_user)), [
      f"{cold.size} test rating(s) by {users} user(s) with no training "
      "rating dropped (cold users)."]


def _drop_overlap(train: RawRatings, test: RawRatings
                  ) -> tuple[RawRatings, list[str]]:
  """``test`` without the (user, item) pairs that ``train`` has, and a note
  counting them."""
  _, (train_users, test_users) = map_ids([train.users, test.users])
  _, (train_items, test_items) = map_ids([train.items, test.items])
  n = int(max(train_users.max(initial=0), test_users.max(initial=0))) + 1
  key = lambda items, users: items.astype(np.int64) * n + users
  shared = np.isin(key(test_items, test_users), key(train_items, train_users))
  if not shared.any():
    return test, []
  return test.take(np.flatnonzero(~shared)), [
      f"{int(shared.sum())} test rating(s) of (user, item) pairs also in "
      "the training file dropped (overlap='drop')."]


def load_dataset(name: str, data_dir: Optional[str] = None,
                 download: bool = False, **kwargs) -> RatingData:
  """Loads ``name`` (one of :data:`DATASETS`); ``kwargs`` go to its loader
  (for ``"file"``: :func:`load_ratings_file`'s, without ``data_dir``)."""
  loaders = {"ml-100k": load_ml_100k, "ml-1m": load_ml_1m,
             "ml-10m": load_ml_10m, "ml-20m": load_ml_20m,
             "ml-25m": load_ml_25m, "netflix": load_netflix,
             "douban": load_douban, "flixster": load_flixster,
             "yahoo_music": load_yahoo_music}
  if name == "synthetic":
    return synthetic(**kwargs)
  if name == "file":
    return load_ratings_file(**kwargs)
  if name not in loaders:
    raise ValueError(f"Unknown dataset {name!r}; known: {DATASETS}.")
  return loaders[name](data_dir, download, **kwargs)
