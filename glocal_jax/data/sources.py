"""Where each data set lives: public homes, checksums, published sizes and
scales; locating a data set's folder and downloading into it (verified)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from typing import Optional

from glocal_jax.data.container import (HALF_STARS, STARS, DataFormatError,
                                       MissingDataError)


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


def locate(dataset: str, data_dir: Optional[str], download: bool) -> str:
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
