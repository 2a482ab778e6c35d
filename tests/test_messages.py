"""A user's own rating files: unusual but valid input loads, bad input is
a message naming the file and line (glocal_jax.data.load_ratings_file)."""

import os

import numpy as np
import pytest

from glocal_jax import data as gdata


def write(tmp_path, text, name="ratings.csv"):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def load(path, **options):
  return gdata.load_ratings_file(path, test_fraction=0.25, cache_dir="none",
                                 **options)


def lines(n=8):
  return [f"u{u},i{i},{1 + (u + i) % 5}" for u in range(n) for i in range(4)]


def test_quoted_fields_scientific_notation_and_blank_lines_load(tmp_path):
  rows = [f'"{r.split(",")[0]}","{r.split(",")[1]}","{r.split(",")[2]}"'
          for r in lines()]
  rows[3] = rows[3].replace('"5"', '"5e0"').replace('"4"', '"4e0"')
  text = '"user","item","rating"\n' + "\n".join(rows[:10]) + "\n   \n\t\n" + (
      "\n".join(rows[10:])) + "\n"
  data = load(write(tmp_path, text))
  assert data.train.count() + data.test.count() == len(rows)
  assert data.user_ids.dtype.kind == "S" and b"u0" in data.user_ids
  assert data.scale == gdata.STARS


def test_ids_are_text_unless_numbers_are_asked_for(tmp_path):
  path = write(tmp_path, "007,1,4\n7,2,3\n8,1,5\n8,2,2\n7,1,1\n")
  text = gdata.load_ratings_file(path, test_fraction=0.5, cache_dir="none")
  assert sorted(text.user_ids.tolist()) == [b"007", b"7", b"8"]
  numbers = gdata.load_ratings_file(path, test_fraction=0.5,
                                    cache_dir="none", ids="numbers",
                                    duplicates="last")
  assert numbers.user_ids.tolist() == [7, 8]
  bad = write(tmp_path, "7,1,4\nu8,2,3\n", "bad.csv")
  with pytest.raises(gdata.DataFormatError, match="line 2: field 1 must be "
                     "a non-negative integer id, got 'u8'"):
    gdata.load_ratings_file(bad, cache_dir="none", ids="numbers")


@pytest.mark.parametrize("first,message", [
    ("1,5,n/a", "line 1: field 3 (a rating) must be a number, got 'n/a'"),
    ("u0,i9,-2", "line 1: rating -2 (field 3): ratings must be positive"),
    ("u0,i9,0", "line 1: rating 0 (field 3): ratings must be positive"),
])
def test_a_bad_first_line_is_reported_not_taken_for_a_header(
    tmp_path, first, message):
  path = write(tmp_path, first + "\n" + "\n".join(lines()) + "\n")
  with pytest.raises(gdata.DataFormatError) as e:
    load(path)
  assert f"{path}, {message}" in str(e.value)


def test_wide_file_with_the_rating_elsewhere_says_which_field(tmp_path):
  rows = [",".join([f"u{u}", f"i{i}", "0"] + [str(1 + u * i % 5)] * 47)
          for u in range(6) for i in range(5)]
  path = write(tmp_path, "\n".join(rows) + "\n")
  with pytest.raises(gdata.DataFormatError, match="field 3.*--columns"):
    load(path)
  data = load(path, columns=(0, 1, 3), scale=gdata.RatingScale(0.5, 6.0,
                                                                0.5))
  assert data.train.count() > 0


def test_folders_and_unreadable_files_are_named(tmp_path):
  with pytest.raises(gdata.MissingDataError, match="is a folder, not a "
                     "ratings file"):
    load(str(tmp_path))
  path = write(tmp_path, "\n".join(lines()) + "\n")
  os.chmod(path, 0)
  try:
    if os.access(path, os.R_OK):
      pytest.skip("running as root: the file stays readable")
    with pytest.raises(gdata.DataFormatError, match="cannot read it"):
      load(path)
  finally:
    os.chmod(path, 0o644)
  assert np.isfinite(load(path).train.values).all()
