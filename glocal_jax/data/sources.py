"""Where each data set lives: public homes, checksums, published sizes and
scales; locating a data set's folder and downloading into it (verified)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from typing import Optional, Sequence
import urllib.request
import zipfile

from glocal_jax.data.container import HALF_STARS
from glocal_jax.data.container import STARS
from glocal_jax.data.container import DataFormatError
from glocal_jax.data.container import MissingDataError
from glocal_jax.data.container import RatingScale


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
# ML-100K's folds (u1..u5: the release's 5-fold cross-validation; ua, ub:
# 10 test ratings per user), all ratings and the item titles.
ML_100K_FOLDS: tuple[str, ...] = ("1", "2", "3", "4", "5", "a", "b")
ML_100K_SHA256 = {
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
    "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
    "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
    "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
    "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
    "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
    "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
    "u5.base": "c928ae1d6a3fb3a14625cae5bb377f3e92c93bcf8fea0b252c935d360ebf8d00",
    "u5.test": "7743953f671e6b5f11a69f7f62c500e3f06965cd353de94a0eb808de3eac6bf3",
    "ua.base": "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
    "ua.test": "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
    "ub.base": "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
    "ub.test": "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da",
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
}
ML_100K_FILES = tuple(ML_100K_SHA256)
# Monti et al.'s splits (Douban, Flixster, YahooMusic): one MATLAB v7.3 file.
MONTI_DATASETS: tuple[str, ...] = ("douban", "flixster", "yahoo_music")
MONTI_FILE = "training_test_dataset.mat"
SOURCES: dict[str, Source] = {
    "ml-100k": Source(
        GROUPLENS + "ml-100k.zip",
        {name: "ml-100k/" + name for name in ML_100K_FILES},
        ML_100K_SHA256),
    "ml-1m": Source(GROUPLENS + "ml-1m.zip",
                    {"ratings.dat": "ml-1m/ratings.dat"}, {}),
    "ml-10m": Source(GROUPLENS + "ml-10m.zip",
                     {"ratings.dat": "ml-10M100K/ratings.dat"}, {}),
    "ml-20m": Source(GROUPLENS + "ml-20m.zip",
                     {"ratings.csv": "ml-20m/ratings.csv"}, {}),
    "ml-25m": Source(GROUPLENS + "ml-25m.zip",
                     {"ratings.csv": "ml-25m/ratings.csv"}, {}),
    **{name: Source(
        "https://raw.githubusercontent.com/fmonti/mgcnn/master/Data/"
        f"{name}/{member}", {}, {MONTI_FILE: sha})
       for name, (member, sha) in {
           "douban": ("training_test_dataset.mat",
                      "1f4476321cbfe0f606e7e35d0695ca15447a1b0b2c811df130109b6cb9a067ae"),
           "flixster": ("training_test_dataset_10_NNs.mat",
                        "8b07e0387edfe7ffdccead2826bb3844ddbd9e6a8ccba264ce81a3b59b273197"),
           "yahoo_music": ("training_test_dataset_10_NNs.mat",
                           "56a80de836537544d0d6ba36fc59937dfe87f738ac5e2a701cc8226faf4f31ec"),
       }.items()},
}
NETFLIX_FILES = tuple(f"combined_data_{k}.txt" for k in range(1, 5)) + (
    "probe.txt",)


SCALES = {"ml-100k": STARS, "ml-1m": STARS, "ml-10m": HALF_STARS,
          "ml-20m": HALF_STARS, "ml-25m": HALF_STARS, "netflix": STARS,
          "douban": STARS, "flixster": HALF_STARS,
          "yahoo_music": RatingScale(1.0, 100.0, 1.0), "synthetic": STARS}
# Published size of each release (ratings, users, items), before any split.
PUBLISHED = {"ml-100k": (100_000, 943, 1_682),
             "ml-1m": (1_000_209, 6_040, 3_706),
             "ml-10m": (10_000_054, 69_878, 10_677),
             "ml-20m": (20_000_263, 138_493, 26_744),
             "ml-25m": (25_000_095, 162_541, 59_047),
             "netflix": (100_480_507, 480_189, 17_770),
             "douban": (136_891, 3_000, 3_000),
             "flixster": (26_173, 3_000, 3_000),
             "yahoo_music": (5_335, 3_000, 3_000)}


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


def _download(dataset: str, data_dir: str, names: Sequence[str]) -> None:
  """Downloads ``dataset``'s archive (or file) into ``data_dir`` and keeps
  ``names`` (and any other listed member the archive has), verified,
  atomically: a wrong checksum or a missing member writes nothing."""
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
          present = set(archive.namelist())
          kept = [n for n, member in source.members.items()
                  if n in names or member in present]
          for name in kept:
            with archive.open(source.members[name]) as src, \
                open(os.path.join(tmp, name), "wb") as dst:
              shutil.copyfileobj(src, dst)
      except (zipfile.BadZipFile, KeyError) as e:
        raise DataFormatError(
            f"{source.url} is not the expected zip archive: {e}.") from e
    else:
      kept = file_names(dataset)
      os.replace(fetched, os.path.join(tmp, kept[0]))
    for name in kept:
      expected = source.sha256.get(name)
      got = _sha256(os.path.join(tmp, name))
      if expected is not None and got != expected:
        raise DataFormatError(
            f"Checksum mismatch for {name} from {source.url}: sha256 {got}, "
            f"expected {expected}. Nothing was written to {data_dir}.")
    for name in kept:
      os.replace(os.path.join(tmp, name), os.path.join(data_dir, name))


def file_names(dataset: str) -> list[str]:
  """The files of ``dataset`` that its source provides."""
  source = SOURCES[dataset]
  return list(source.members) or list(source.sha256)


def locate(dataset: str, data_dir: Optional[str], download: bool,
           names: Optional[Sequence[str]] = None) -> str:
  """The directory holding ``names`` of ``dataset``'s files (default: all
  of them), downloading them if asked."""
  data_dir = data_dir or default_data_dir(dataset)
  names = file_names(dataset) if names is None else list(names)
  missing = [n for n in names
             if not os.path.isfile(os.path.join(data_dir, n))]
  if missing and download:
    _download(dataset, data_dir, names)
  elif missing:
    raise MissingDataError(
        f"{dataset}: {', '.join(missing)} not found in {data_dir}. Pass "
        f"download=True (--download in the scripts) to fetch them from "
        f"{SOURCES[dataset].url}, or put them there by hand.")
  return data_dir
