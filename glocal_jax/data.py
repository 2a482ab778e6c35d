"""Rating data sets: the paper's, the large public releases, your own files.

Every loader returns a :class:`RatingData`: train and test
:class:`~glocal_jax.ratings.Ratings` (sorted items x users triplets, never a
dense matrix), the raw ids of the rows and columns, and the rating scale.
Loaders take a directory; missing files raise :class:`MissingDataError`
saying how to get them, or are downloaded (and checksum-verified where the
checksum is known) with ``download=True``.

* ``ml-100k`` (``u1.base``/``u1.test``), ``ml-1m``, ``ml-10m``
  (``ratings.dat``), ``ml-20m``, ``ml-25m`` (``ratings.csv``): MovieLens,
  the last four split 90/10 by the reference's seeded shuffle (see
  :func:`load_ml_1m`).
* ``netflix``: the Netflix Prize data (``combined_data_1.txt`` ..
  ``combined_data_4.txt``), ``probe.txt`` as the test set and removed from
  training, the standard protocol.
* ``douban``: Monti et al.'s ``training_test_dataset.mat``.
* ``file``: any delimited ratings file (:func:`load_ratings_file`).

Text files are parsed by :mod:`glocal_jax.parsing` (vectorised, seconds for
20M lines) and the parsed arrays cached next to the file (a hidden ``.npz``
keyed by the file's size and modification time), so a second load reads no
text. Every loader checks its data the same way (:func:`validate`): ratings
on the data set's scale, no cell rated twice in a file or in two splits (a
leaked test rating), and a note when the size differs from the published
release. Errors name the file and the line.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from typing import Optional, Sequence

import numpy as np

from glocal_jax import parsing
from glocal_jax import ratings as rt
from glocal_jax.ratings import Ratings

DATASETS: tuple[str, ...] = ("ml-100k", "ml-1m", "ml-10m", "ml-20m",
                             "ml-25m", "netflix", "douban", "file",
                             "synthetic")


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


GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
SOURCES: dict[str, Source] = {
    "ml-100k": Source(
        GROUPLENS + "ml-100k.zip",
        {"u1.base": "ml-100k/u1.base", "u1.test": "ml-100k/u1.test"},
        {"u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
         "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950"}),
    "ml-1m": Source(GROUPLENS + "ml-1m.zip",
                    {"ratings.dat": "ml-1m/ratings.dat"}, {}),
    "ml-10m": Source(GROUPLENS + "ml-10m.zip",
                     {"ratings.dat": "ml-10M100K/ratings.dat"}, {}),
    "ml-20m": Source(GROUPLENS + "ml-20m.zip",
                     {"ratings.csv": "ml-20m/ratings.csv"}, {}),
    "ml-25m": Source(GROUPLENS + "ml-25m.zip",
                     {"ratings.csv": "ml-25m/ratings.csv"}, {}),
    "douban": Source(
        "https://raw.githubusercontent.com/fmonti/mgcnn/master/Data/douban/"
        "training_test_dataset.mat",
        {}, {"training_test_dataset.mat":
             "1f4476321cbfe0f606e7e35d0695ca15447a1b0b2c811df130109b6cb9a067ae"}),
}
NETFLIX_FILES = tuple(f"combined_data_{k}.txt" for k in range(1, 5)) + (
    "probe.txt",)


@dataclasses.dataclass(frozen=True)
class RatingScale:
  """The ratings a data set allows: ``low`` to ``high`` in steps of ``step``
  (``step = 0``: any value in between). Predictions are clipped to
  ``[low, high]`` before every metric."""
  low: float
  high: float
  step: float = 1.0

  def __post_init__(self):
    if not 0 < self.low <= self.high or self.step < 0:
      raise ValueError(f"a rating scale needs 0 < low <= high and step >= 0 "
                       f"(0 is 'not rated'), got {self}.")

  def off_scale(self, values: np.ndarray) -> np.ndarray:
    """Indices of ``values`` not on the scale."""
    bad = (values < self.low) | (values > self.high)
    if self.step:
      steps = (values - self.low) / self.step
      bad |= np.abs(steps - np.round(steps)) > 1e-6
    return np.flatnonzero(bad)

  def describe(self) -> str:
    step = f" in steps of {self.step:g}" if self.step else ""
    return f"{self.low:g}..{self.high:g}{step}"


STARS = RatingScale(1.0, 5.0, 1.0)
HALF_STARS = RatingScale(0.5, 5.0, 0.5)
SCALES = {"ml-100k": STARS, "ml-1m": STARS, "ml-10m": HALF_STARS,
          "ml-20m": HALF_STARS, "ml-25m": HALF_STARS, "netflix": STARS,
          "douban": STARS, "synthetic": STARS}
# Published size of each release (ratings, users, items), before any split.
PUBLISHED = {"ml-100k": (100_000, 943, 1_682),
             "ml-1m": (1_000_209, 6_040, 3_706),
             "ml-10m": (10_000_054, 69_878, 10_677),
             "ml-20m": (20_000_263, 138_493, 26_744),
             "ml-25m": (25_000_095, 162_541, 59_047),
             "netflix": (100_480_507, 480_189, 17_770),
             "douban": (136_891, 3_000, 3_000)}


@dataclasses.dataclass(frozen=True)
class RatingData:
  """Ratings split into train / test (and optionally validation).

  Attributes:
    name: dataset name.
    train: training :class:`~glocal_jax.ratings.Ratings`, items x users.
    test: test ratings of the same matrix.
    item_ids: ``(m,)`` raw item id of each row (int64, or bytes for string
      ids).
    user_ids: ``(n,)`` raw user id of each column.
    valid: validation ratings carved out of the training ones (see
      :func:`split_validation`), or None.
    notes: warnings about the data a user should see (e.g. counts that
      differ from the published release, cold test users dropped).
    scale: the rating scale (predictions are clipped to it).
  """
  name: str
  train: Ratings
  test: Ratings
  item_ids: np.ndarray
  user_ids: np.ndarray
  valid: Optional[Ratings] = None
  notes: tuple[str, ...] = ()
  scale: RatingScale = STARS

  @property
  def shape(self) -> tuple[int, int]:
    """``(n_items, n_users)``."""
    return self.train.shape

  def summary(self) -> str:
    parts = [f"{self.name}: {self.shape[0]} items x {self.shape[1]} users",
             f"{self.train.count()} train"]
    if self.valid is not None:
      parts.append(f"{self.valid.count()} validation")
    parts.append(f"{self.test.count()} test ratings on "
                 f"{self.scale.describe()}")
    return ", ".join(parts)


def validate(data: RatingData, scale: Optional[RatingScale] = None
             ) -> RatingData:
  """Checks a loaded data set; the same rules for every loader.

  Refuses: no training rating; a rating off ``scale``; a cell rated in two
  splits (train, test, validation: a leaked test rating). Returns ``data``
  with a note when its size differs from the published release's (e.g. a
  truncated download).

  Raises:
    DataFormatError: naming the split and the first offending entry.
  """
  if data.train.count() == 0:
    raise DataFormatError(f"{data.name}: no training ratings.")
  splits = {"train": data.train, "test": data.test}
  if data.valid is not None:
    splits["validation"] = data.valid
  n = data.shape[1]
  keys = {}
  for name, split in splits.items():
    host = split.to_host()
    real = host.values > 0
    if scale is not None:
      bad = scale.off_scale(host.values[real])
      if bad.size:
        raise DataFormatError(
            f"{data.name} {name}: rating {host.values[real][bad[0]]:g} is "
            f"not on the scale {scale.describe()} ({bad.size} such "
            "ratings).")
    keys[name] = host.items[real].astype(np.int64) * n + host.users[real]
  names = list(keys)
  for i, a in enumerate(names):
    for b in names[i + 1:]:
      both, _ = _shared(keys[a], keys[b])
      if both.size:
        item, user = divmod(int(keys[a][both[0]]), n)
        raise DataFormatError(
            f"{data.name}: {both.size} cell(s) rated in both {a} and {b}, "
            f"e.g. item {data.item_ids[item]} by user {data.user_ids[user]} "
            "(a test rating would leak into training).")
  published = PUBLISHED.get(data.name)
  if published is not None:
    count = sum(s.count() for s in splits.values())
    found = (count, data.shape[1], data.shape[0])
    if found != published:
      note = (f"{data.name} has {found[0]} ratings, {found[1]} users and "
              f"{found[2]} items; the published release has {published[0]}, "
              f"{published[1]} and {published[2]}: a partial or modified "
              "file?")
      data = dataclasses.replace(data, notes=data.notes + (note,))
  return data


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


# --- Text files: parse (cached), check, map ids. ---

@dataclasses.dataclass
class RawRatings:
  """Ratings read from one file, raw ids not yet mapped to indices.

  Attributes:
    path: the file.
    users, items: raw ids (int64, or bytes for string ids).
    values: float32 ratings.
    lines: 1-based line number of each rating.
  """
  path: str
  users: np.ndarray
  items: np.ndarray
  values: np.ndarray
  lines: np.ndarray

  def take(self, index: np.ndarray) -> "RawRatings":
    return RawRatings(self.path, self.users[index], self.items[index],
                      self.values[index], self.lines[index])


CACHE_VERSION = 1


def _cache_path(path: str, key: str) -> str:
  stat = os.stat(path)
  digest = hashlib.sha1(key.encode()).hexdigest()[:10]
  return os.path.join(
      os.path.dirname(os.path.abspath(path)),
      f".{os.path.basename(path)}.glocal_jax-{CACHE_VERSION}-{stat.st_size}-"
      f"{stat.st_mtime_ns}-{digest}.npz")


def _cached(path: str, key: str, read) -> dict:
  """``read()``'s arrays, or those cached for this file's size, mtime and
  ``key``; the cache is written beside the file when its folder is
  writable (older caches of the file are removed)."""
  cache = _cache_path(path, key)
  if os.path.isfile(cache):
    try:
      with np.load(cache, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
    except Exception:  # pylint: disable=broad-except
      pass  # a damaged cache is re-parsed and overwritten
  arrays = read()
  prefix = cache.split(".glocal_jax-")[0] + ".glocal_jax-"
  try:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(cache), suffix=".npz")
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **arrays)
    os.replace(tmp, cache)
    for old in glob.glob(glob.escape(prefix) + "*.npz"):
      if old != cache:
        os.remove(old)
  except OSError:
    pass  # a read-only data folder: no cache
  return arrays


def read_ratings(path: str, *, columns: Sequence[int] = (0, 1, 2),
                 kinds: Sequence[str] = ("id", "id", "number"),
                 delimiter: Optional[str] = None,
                 header: Optional[bool] = None, netflix: bool = False,
                 cache: bool = True) -> RawRatings:
  """Parses ``user item rating`` columns of a file (cached).

  Args:
    path: the file.
    columns: 0-based fields of the user id, the item id and the rating.
    kinds: :func:`glocal_jax.parsing.read_table`'s kinds of the three.
    delimiter, header: see :func:`glocal_jax.parsing.read_table` (None:
      detected).
    netflix: a Netflix Prize ``combined_data_*.txt`` file instead.
    cache: read and write the parsed-array cache.

  Raises:
    MissingDataError: no such file.
    DataFormatError: naming the file and line.
  """
  if not os.path.isfile(path):
    raise MissingDataError(f"{path} does not exist.")

  def read():
    try:
      if netflix:
        table = parsing.read_netflix(path)
      else:
        table = parsing.read_table(path, columns, kinds=kinds,
                                   delimiter=delimiter, header=header)
    except parsing.ParseError as e:
      raise DataFormatError(str(e)) from None
    users, items, values = table.columns
    return {"users": users, "items": items,
            "values": values.astype(np.float32), "lines": table.lines}

  key = f"{netflix}|{list(columns)}|{list(kinds)}|{delimiter!r}|{header!r}"
  arrays = _cached(path, key, read) if cache else read()
  return RawRatings(path, arrays["users"], arrays["items"], arrays["values"],
                    arrays["lines"])


def _check_raw(raw: RawRatings, scale: Optional[RatingScale],
               positive_ids: bool, duplicates: str = "error"
               ) -> tuple[RawRatings, list[str]]:
  """Scale, id and duplicate checks with line numbers; returns the kept
  ratings and notes (duplicates dropped with ``duplicates="last"``)."""
  if scale is not None:
    bad = scale.off_scale(raw.values)
    if bad.size:
      i = bad[0]
      raise DataFormatError(
          f"{raw.path}, line {raw.lines[i]}: rating {raw.values[i]:g} is not "
          f"on the scale {scale.describe()} ({bad.size} such ratings).")
  if positive_ids:
    for name, ids in (("user", raw.users), ("item", raw.items)):
      bad = np.flatnonzero(ids <= 0)
      if bad.size:
        raise DataFormatError(f"{raw.path}, line {raw.lines[bad[0]]}: ids "
                              f"must be positive, got {name} {ids[bad[0]]}.")
  order = _by_cell_then_line(raw)
  same = np.flatnonzero((raw.items[order][1:] == raw.items[order][:-1])
                        & (raw.users[order][1:] == raw.users[order][:-1]))
  if same.size == 0:
    return raw, []
  if duplicates == "error":
    first, second = order[same[0]], order[same[0] + 1]
    raise DataFormatError(
        f"{raw.path}, line {raw.lines[second]}: duplicate rating of item "
        f"{_show(raw.items[first])} by user {_show(raw.users[first])} (first "
        f"at line {raw.lines[first]}); {same.size} duplicate(s) in all. Pass "
        "duplicates='last' (--duplicates=last) to keep the last of each.")
  if duplicates != "last":
    raise ValueError(f"duplicates must be 'error' or 'last', got "
                     f"{duplicates!r}.")
  keep = np.ones(raw.values.size, bool)
  keep[order[same]] = False  # of each run of equal pairs, the last stays
  return raw.take(np.flatnonzero(keep)), [
      f"{raw.path}: {same.size} duplicate rating(s) dropped, the last of "
      "each kept."]


def _by_cell_then_line(raw: RawRatings) -> np.ndarray:
  """The order of ``raw`` by item, user, then line: one stable int64 sort
  when the ids are non-negative integers whose cell key fits and the lines
  are in file order, else a three-key lexsort."""
  ints = raw.items.dtype.kind in "iu" and raw.users.dtype.kind in "iu"
  if ints and raw.items.size and min(raw.items.min(), raw.users.min()) >= 0:
    width = int(raw.users.max()) + 1
    if (int(raw.items.max()) + 1) * width < 2**62 and np.all(
        raw.lines[1:] > raw.lines[:-1]):
      return np.argsort(raw.items.astype(np.int64) * width + raw.users,
                        kind="stable")
  return np.lexsort((raw.lines, raw.users, raw.items))


def _show(raw_id) -> str:
  return raw_id.decode("utf-8", "replace") if isinstance(raw_id, bytes) else (
      str(raw_id))


def _shared(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Indices into ``a`` and into ``b`` of pairs of equal keys, one pair per
  key that both hold (duplicates within ``a`` or ``b`` alone do not count).

  One stable sort of both: in a run of equal keys, ``a``'s entries come
  first, so a key in both has an ``a`` entry next to a ``b`` entry.
  (``np.intersect1d`` first makes each side unique, several times slower
  on tens of millions of keys.)"""
  keys = np.concatenate([a, b])
  order = np.argsort(keys, kind="stable")
  ordered = keys[order]
  equal = np.flatnonzero(ordered[1:] == ordered[:-1])
  first, second = order[equal], order[equal + 1]
  cross = (first < a.size) & (second >= a.size)
  return first[cross], second[cross] - a.size


def _unique_inverse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Sorted unique values of ``x`` and each entry's index into them, from
  one stable sort."""
  order = np.argsort(x, kind="stable")
  ordered = x[order]
  new = np.ones(x.size, bool)
  np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
  inverse = np.empty(x.size, np.int64)
  inverse[order] = np.cumsum(new) - 1
  return ordered[new], inverse


def _ids(parts: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
  """Sorted unique raw ids over ``parts`` and each part's indices into
  them (ids of mixed kinds are compared as text)."""
  if any(p.dtype.kind == "S" for p in parts):
    parts = [p if p.dtype.kind == "S" else p.astype("S") for p in parts]
    width = max(p.dtype.itemsize for p in parts)
    parts = [p.astype(f"S{width}") for p in parts]
  ids, inverse = _unique_inverse(np.concatenate(parts))
  return ids, np.split(inverse, np.cumsum([p.size for p in parts])[:-1])


def _build(name: str, parts: Sequence[RawRatings], scale: RatingScale,
           notes: Sequence[str] = ()) -> RatingData:
  """Train and test :class:`Ratings` of ``parts`` (train, test), ids mapped
  to 0..n-1 in sorted order of the raw ids over both; a cell in both
  parts is an error naming both lines."""
  user_ids, users = _ids([p.users for p in parts])
  item_ids, items = _ids([p.items for p in parts])
  n = user_ids.size
  keys = [it.astype(np.int64) * n + us for it, us in zip(items, users)]
  in_train, in_test = _shared(*keys)
  if in_train.size:
    i, j = in_train[0], in_test[0]
    raise DataFormatError(
        f"{parts[1].path}, line {parts[1].lines[j]}: item "
        f"{_show(item_ids[items[1][j]])} by user {_show(user_ids[users[1][j]])} "
        f"is also in {parts[0].path}, line {parts[0].lines[i]} (a test rating "
        f"would leak into training); {in_train.size} such cell(s).")
  shape = (item_ids.size, n)
  split = [Ratings(*_sorted(it, us, p.values, key), shape)
           for it, us, p, key in zip(items, users, parts, keys)]
  return validate(RatingData(name, split[0], split[1], item_ids, user_ids,
                             notes=tuple(notes), scale=scale), scale)


def _sorted(items, users, values, keys):
  """The triplets by item, then user; ``keys``: ``item * n_users + user``
  (one int64 sort instead of a two-key lexsort)."""
  order = np.argsort(keys, kind="stable")
  return (items[order].astype(np.int32), users[order].astype(np.int32),
          values[order].astype(np.float32))


def _seeded_split(raw: RawRatings, test_fraction: float, seed: int
                  ) -> tuple[RawRatings, RawRatings]:
  """The reference's split: rows shuffled by NumPy's legacy RNG seeded with
  ``seed`` (``np.random.seed(seed); np.random.shuffle(...)``, without
  touching the global RNG); the first ``int(test_fraction * N)`` shuffled
  rows are test, the rest train."""
  if not 0.0 < test_fraction < 1.0:
    raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
  order = np.arange(raw.values.size)
  np.random.RandomState(seed).shuffle(order)
  n_test = int(test_fraction * raw.values.size)
  return raw.take(order[n_test:]), raw.take(order[:n_test])


# --- The data sets. ---

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
  parts = [_check_raw(read_ratings(os.path.join(data_dir, name),
                                   kinds=("int", "int", "number"),
                                   delimiter="\t", header=False),
                      STARS, positive_ids=True)[0]
           for name in ("u1.base", "u1.test")]
  return _build("ml-100k", parts, STARS)


def _load_movielens(name: str, file_name: str, data_dir: Optional[str],
                    download: bool, test_fraction: float, seed: int,
                    delimiter: str, header: bool) -> RatingData:
  data_dir = _locate(name, data_dir, download)
  raw, notes = _check_raw(read_ratings(
      os.path.join(data_dir, file_name), kinds=("int", "int", "number"),
      delimiter=delimiter, header=header), SCALES[name], positive_ids=True)
  return _build(name, _seeded_split(raw, test_fraction, seed), SCALES[name],
                notes)


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
  return _load_movielens("ml-1m", "ratings.dat", data_dir, download,
                         test_fraction, seed, "::", False)


def load_ml_10m(data_dir: Optional[str] = None, download: bool = False,
                test_fraction: float = 0.1, seed: int = 1234) -> RatingData:
  """MovieLens-10M ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``,
  half stars 0.5..5), split as :func:`load_ml_1m`: 10,677 x 69,878."""
  return _load_movielens("ml-10m", "ratings.dat", data_dir, download,
                         test_fraction, seed, "::", False)


def load_ml_20m(data_dir: Optional[str] = None, download: bool = False,
                test_fraction: float = 0.1, seed: int = 1234) -> RatingData:
  """MovieLens-20M ``ratings.csv`` (header ``userId,movieId,rating,
  timestamp``, half stars), split as :func:`load_ml_1m`: 26,744 x 138,493."""
  return _load_movielens("ml-20m", "ratings.csv", data_dir, download,
                         test_fraction, seed, ",", True)


def load_ml_25m(data_dir: Optional[str] = None, download: bool = False,
                test_fraction: float = 0.1, seed: int = 1234) -> RatingData:
  """MovieLens-25M ``ratings.csv``, as :func:`load_ml_20m`."""
  return _load_movielens("ml-25m", "ratings.csv", data_dir, download,
                         test_fraction, seed, ",", True)


def load_netflix(data_dir: Optional[str] = None,
                 download: bool = False) -> RatingData:
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
  parts = [read_ratings(os.path.join(data_dir, f), netflix=True)
           for f in NETFLIX_FILES[:-1]]
  raw = RawRatings(data_dir, *(np.concatenate([getattr(p, k) for p in parts])
                               for k in ("users", "items", "values",
                                         "lines")))
  raw, notes = _check_raw(raw, STARS, positive_ids=True)
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
  return _build("netflix", [train, test], STARS, notes)


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
  if np.any(train < 0) or np.any(test < 0):
    raise DataFormatError(f"{path}: negative ratings in M.")
  return validate(RatingData("douban", rt.from_dense(train),
                             rt.from_dense(test),
                             np.arange(1, ratings.shape[0] + 1),
                             np.arange(1, ratings.shape[1] + 1)), STARS)


def _scale_of(values: np.ndarray) -> RatingScale:
  """The scale a file's ratings are on: their range, in steps of 1 or 0.5
  when they all are, else continuous."""
  low, high = float(values.min()), float(values.max())
  for step in (1.0, 0.5):
    steps = (values - low) / step
    if np.all(np.abs(steps - np.round(steps)) < 1e-6):
      return RatingScale(low, high, step)
  return RatingScale(low, high, 0.0)


COLD_USERS = ("drop", "keep")


def load_ratings_file(train_file: str, test_file: Optional[str] = None, *,
                      test_fraction: float = 0.1, seed: int = 1234,
                      delimiter: Optional[str] = None,
                      header: Optional[bool] = None,
                      columns: Sequence[int] = (0, 1, 2),
                      scale: Optional[RatingScale] = None,
                      duplicates: str = "error", cold_users: str = "drop",
                      name: str = "file") -> RatingData:
  """Any ratings file: ``user, item, rating`` columns, ids of any kind.

  Args:
    train_file: the ratings (all of them, without ``test_file``).
    test_file: held-out ratings; None splits ``train_file`` by
      ``test_fraction`` with the reference's seeded shuffle
      (:func:`load_ml_1m`).
    test_fraction, seed: the split when there is no ``test_file``.
    delimiter: one of ``"::"``, tab, ``","``, ``";"``, ``" "`` (runs of
      spaces); None detects it.
    header: whether the first line names the columns; None detects it.
    columns: 0-based fields of the user id, the item id and the rating;
      other fields are ignored.
    scale: the rating scale; None takes the range of the ratings, in steps
      of 1 or 0.5 when they all are.
    duplicates: a ``(user, item)`` pair rated twice in a file: ``"error"``,
      or ``"last"`` to keep the last (counted in the notes).
    cold_users: test ratings by users with no training rating: ``"drop"``
      (the default: an item-based autoencoder has no trained output for such
      a user; they are counted in the notes) or ``"keep"``. Test items with
      no training rating are kept: their input row is empty, and after
      fine-tuning it is filled by the convolution from neighbouring items.
    name: the data set's name in results.

  Returns:
    :class:`RatingData` whose ``user_ids``/``item_ids`` are the file's ids
    (int64 when all ids are integers, else bytes), in sorted order.

  Raises:
    MissingDataError: a file does not exist.
    DataFormatError: naming the file and line; also when the test file
      shares no user and no item with training.
  """
  if cold_users not in COLD_USERS:
    raise ValueError(f"cold_users must be one of {COLD_USERS}, got "
                     f"{cold_users!r}.")
  read = lambda path: read_ratings(path, columns=columns, delimiter=delimiter,
                                   header=header)
  train = read(train_file)
  test = read(test_file) if test_file else None
  if scale is None:
    scale = _scale_of(train.values if test is None else
                      np.concatenate([train.values, test.values]))
  train, notes = _check_raw(train, scale, False, duplicates)
  if test is None:
    train, test = _seeded_split(train, test_fraction, seed)
  else:
    test, more = _check_raw(test, scale, False, duplicates)
    notes += more
  if test.values.size == 0 or train.values.size == 0:
    raise DataFormatError(
        f"{train_file}: {test.values.size} test and {train.values.size} "
        "training ratings; both are needed.")
  _, (train_users, test_users) = _ids([train.users, test.users])
  _, (train_items, test_items) = _ids([train.items, test.items])
  warm_user = np.isin(test_users, train_users)
  warm_item = np.isin(test_items, train_items)
  if not (np.any(warm_user) or np.any(warm_item)):
    what = (f"{test.path}" if test_file else
            f"the test split of {train.path}")
    raise DataFormatError(
        f"{what} shares no user and no item with the training ratings: "
        "nothing learnt from training applies to it (another id scheme, or "
        "the columns in another order?).")
  cold = np.flatnonzero(~warm_user)
  if cold.size:
    users = np.unique(test.users[cold]).size
    if cold_users == "drop":
      if cold.size == test.values.size:
        raise DataFormatError(
            f"all {cold.size} test ratings are by users with no training "
            "rating (cold users); nothing would be left to evaluate. Pass "
            "cold_users='keep' (--cold_users=keep) to keep them.")
      test = test.take(np.flatnonzero(warm_user))
      notes.append(f"{cold.size} test rating(s) by {users} user(s) with no "
                   "training rating dropped (cold users).")
    else:
      notes.append(f"{cold.size} test rating(s) by {users} user(s) with no "
                   "training rating kept (cold users: their predictions "
                   "are untrained).")
  _, (train_items, test_items) = _ids([train.items, test.items])
  cold_items = ~np.isin(test_items, train_items)
  if np.any(cold_items):
    notes.append(f"{int(cold_items.sum())} test rating(s) of "
                 f"{np.unique(test_items[cold_items]).size} item(s) with no "
                 "training rating kept (cold items).")
  return _build(name, [train, test], scale, notes)


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
  """Loads ``name`` (one of :data:`DATASETS`); ``kwargs`` go to its loader
  (for ``"file"``: :func:`load_ratings_file`'s, without ``data_dir``)."""
  loaders = {"ml-100k": load_ml_100k, "ml-1m": load_ml_1m,
             "ml-10m": load_ml_10m, "ml-20m": load_ml_20m,
             "ml-25m": load_ml_25m, "netflix": load_netflix,
             "douban": load_douban}
  if name == "synthetic":
    return synthetic(**kwargs)
  if name == "file":
    return load_ratings_file(**kwargs)
  if name not in loaders:
    raise ValueError(f"Unknown dataset {name!r}; known: {DATASETS}.")
  return loaders[name](data_dir, download, **kwargs)
