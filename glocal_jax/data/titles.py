"""Item titles, so that recommendations name what they recommend.

ML-100K ships them in ``u.item`` (``id|title|...``), ML-1M in
``movies.dat`` (``id::title::genres``); for one's own data, any delimited
file of ``id, name`` (a header line is allowed). The loaders attach them to
:attr:`RatingData.item_titles` when the file is in the data set's folder;
:func:`with_titles` attaches a file given by the user.
"""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np

from glocal_jax.data.checks import show_id
from glocal_jax.data.container import DataFormatError
from glocal_jax.data.container import MissingDataError
from glocal_jax.data.container import RatingData

# The releases' title files: (file name, delimiter, encoding).
RELEASE_TITLES = {"ml-100k": ("u.item", "|", "latin-1"),
                  "ml-1m": ("movies.dat", "::", "latin-1")}


def read_titles(path: str, delimiter: str | None = None,
                encoding: str = "utf-8") -> dict[str, str]:
  """``{item id (text): title}`` of a file whose first two fields are an
  item id and its name.

  Args:
    path: the file.
    delimiter: ``"|"``, ``"::"``, ``","``, tab...; None: the first of those
      in the first line (a comma-separated file may quote its fields).
    encoding: the file's text encoding (the MovieLens files are latin-1).

  Raises:
    MissingDataError: no such file.
    DataFormatError: a line without two fields (named by its number).
  """
  if not os.path.isfile(path):
    raise MissingDataError(f"items file {path} does not exist.")
  with open(path, encoding=encoding, errors="replace", newline="") as f:
    lines = f.read().splitlines()
  if delimiter is None:
    first = lines[0] if lines else ""
    delimiter = next((d for d in ("::", "|", "\t", ",", ";") if d in first),
                     ",")
  titles = {}
  rows = (csv.reader(lines, delimiter=delimiter) if len(delimiter) == 1
          else (line.split(delimiter) for line in lines))
  for number, fields in enumerate(rows, 1):
    if not fields or not "".join(fields).strip():
      continue
    if len(fields) < 2:
      raise DataFormatError(f"{path}, line {number}: expected an item id and "
                            f"a name separated by {delimiter!r}.")
    titles[fields[0].strip()] = fields[1].strip()
  return titles


def title_array(item_ids: np.ndarray, path: str, **options) -> np.ndarray:
  """The titles of ``item_ids`` (raw ids, as in
  :attr:`RatingData.item_ids`) named by the file ``path``: ``""`` for an id
  the file does not name (a header line matches no id and is ignored).
  ``options`` go to :func:`read_titles`.

  Raises:
    DataFormatError: the file names none of the ids (another id scheme).
  """
  titles = read_titles(path, **options)
  names = np.asarray([titles.get(show_id(i), "") for i in item_ids],
                     dtype=str)
  if names.size and not np.any(names != ""):
    raise DataFormatError(f"{path} names none of the data's "
                          f"{names.size} items (another id scheme?).")
  return names


def with_titles(data: RatingData, path: str, **options) -> RatingData:
  """``data`` with :attr:`RatingData.item_titles` from ``path``
  (:func:`title_array`)."""
  return dataclasses.replace(
      data, item_titles=title_array(data.item_ids, path, **options))


def release_titles(data: RatingData, data_dir: str) -> RatingData:
  """``data`` with the titles of its release (:data:`RELEASE_TITLES`) when
  the file is in ``data_dir``; else ``data`` unchanged."""
  known = RELEASE_TITLES.get(data.name)
  if known is None or not os.path.isfile(os.path.join(data_dir, known[0])):
    return data
  name, delimiter, encoding = known
  return with_titles(data, os.path.join(data_dir, name), delimiter=delimiter,
                     encoding=encoding)
