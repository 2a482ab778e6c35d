"""The large public releases and the user's own files, on small files
written here in each exact format, against a plain Python reading."""

import bz2
import gzip
import os
import zipfile

import numpy as np
import pytest
from test_data import reference_ml_1m_split

from glocal_jax import data as gdata
from glocal_jax.data import parsing


def write(path, lines, newline="\r\n", trailing_blank=True):
  text = newline.join(lines) + newline + (newline if trailing_blank else "")
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(text.encode())


def random_triplets(seed, n=300, half=False):
  rng = np.random.default_rng(seed)
  pairs = set()
  while len(pairs) < n:
    pairs.add((int(rng.integers(1, 80)) * 3, int(rng.integers(1, 50)) * 7))
  stars = np.arange(1, 11) / 2 if half else np.arange(1, 6)
  return [(u, i, float(rng.choice(stars))) for u, i in sorted(pairs)]


def dense_of(data, raw_rows, users, items):
  """The dense train and test matrices a plain reading expects."""
  del data
  uid = {u: k for k, u in enumerate(sorted(users))}
  iid = {i: k for k, i in enumerate(sorted(items))}
  out = np.zeros((len(iid), len(uid)), np.float32)
  for u, i, r in raw_rows:
    out[iid[i], uid[u]] = r
  return out


def test_ml_10m_format_half_stars_and_split(tmp_path):
  rows = random_triplets(0, half=True)
  write(tmp_path / "ratings.dat",
        [f"{u}::{i}::{r:g}::97830{u}" for u, i, r in rows])
  data = gdata.load_ml_10m(str(tmp_path))
  assert data.scale == gdata.HALF_STARS
  # The split convention of ML-1M (legacy RNG, seed 1234, first 10% test),
  # on the values as written.
  train, test = reference_ml_1m_split([(u, i, r) for u, i, r in rows])
  np.testing.assert_array_equal(data.train.to_dense(), train)
  np.testing.assert_array_equal(data.test.to_dense(), test)
  np.testing.assert_array_equal(data.user_ids, sorted({u for u, _, _ in rows}))
  assert any("published release" in n for n in data.notes)


@pytest.mark.parametrize("name", ["ml-20m", "ml-25m"])
def test_ml_20m_and_25m_csv_with_header(tmp_path, name):
  rows = random_triplets(1, half=True)
  write(tmp_path / "ratings.csv", ["userId,movieId,rating,timestamp"] +
        [f"{u},{i},{r:g},1112486027" for u, i, r in rows], newline="\n")
  data = gdata.load_dataset(name, str(tmp_path))
  train, test = reference_ml_1m_split(rows)
  np.testing.assert_array_equal(data.train.to_dense(), train)
  np.testing.assert_array_equal(data.test.to_dense(), test)
  again = gdata.load_dataset(name, str(tmp_path))  # from the cache
  np.testing.assert_array_equal(again.train.values, data.train.values)


def write_netflix(tmp_path, rows, probe):
  by_movie = {}
  for u, i, r in rows:
    by_movie.setdefault(i, []).append(f"{u},{int(r)},2005-09-06")
  movies = sorted(by_movie)
  for k in range(4):  # the movies spread over the four files
    lines = []
    for movie in movies[k::4]:
      lines += [f"{movie}:"] + by_movie[movie]
    write(tmp_path / f"combined_data_{k + 1}.txt", lines, newline="\n")
  probe_lines = []
  for movie in sorted({i for _, i in probe}):
    probe_lines += [f"{movie}:"] + [str(u) for u, i in probe if i == movie]
  write(tmp_path / "probe.txt", probe_lines, newline="\n")


def test_netflix_probe_is_the_test_set_and_leaves_training(tmp_path):
  rows = random_triplets(2)
  probe = [(u, i) for u, i, _ in rows[::7]]
  write_netflix(tmp_path, rows, probe)
  data = gdata.load_netflix(str(tmp_path))
  probe_set = set(probe)
  users = {u for u, _, _ in rows}
  items = {i for _, i, _ in rows}
  expected_train = dense_of(data, [x for x in rows if x[:2] not in probe_set],
                            users, items)
  expected_test = dense_of(data, [x for x in rows if x[:2] in probe_set],
                           users, items)
  np.testing.assert_array_equal(data.train.to_dense(), expected_train)
  np.testing.assert_array_equal(data.test.to_dense(), expected_test)
  assert data.test.count() == len(probe)


def test_netflix_missing_files_say_where_they_go(tmp_path):
  with pytest.raises(gdata.MissingDataError, match="no longer distributes"):
    gdata.load_netflix(str(tmp_path))


def test_netflix_probe_pair_without_rating_is_an_error(tmp_path):
  rows = random_triplets(3, n=40)
  write_netflix(tmp_path, rows, [(999, rows[0][1])])
  with pytest.raises(gdata.DataFormatError, match="probe.txt, line 2"):
    gdata.load_netflix(str(tmp_path))


@pytest.mark.parametrize("delimiter", [",", "\t", "::", ";", " "])
def test_any_file_string_ids_header_and_extra_columns(tmp_path, delimiter):
  rng = np.random.default_rng(4)
  rows = [(f"u_{u}", f"tt{i:07d}", float(rng.integers(1, 6)))
          for u in range(12) for i in range(9) if rng.random() < 0.6]
  sep = "   " if delimiter == " " else delimiter
  write(tmp_path / "mine.txt", [sep.join(["user", "item", "stars", "when"])]
        + [sep.join([u, i, f"{r:g}", "1600000000"]) for u, i, r in rows])
  data = gdata.load_ratings_file(str(tmp_path / "mine.txt"),
                                 test_fraction=0.25, seed=3,
                                 cold_users="keep")
  assert data.user_ids.dtype.kind == "S"
  assert [u.decode() for u in data.user_ids] == sorted({u for u, _, _ in rows})
  assert data.train.count() + data.test.count() == len(rows)
  train = {(data.item_ids[i].decode(), data.user_ids[u].decode()): v
           for i, u, v in zip(data.train.items, data.train.users,
                              data.train.values)}
  test = {(data.item_ids[i].decode(), data.user_ids[u].decode()): v
          for i, u, v in zip(data.test.items, data.test.users,
                             data.test.values)}
  assert {**train, **test} == {(i, u): r for u, i, r in rows}
  assert len(test) == int(0.25 * len(rows))
  assert data.scale == gdata.RatingScale(1.0, 5.0, 1.0)


def test_any_file_with_test_file_columns_and_scale(tmp_path):
  write(tmp_path / "train.tsv", ["5\t9\t10\t3.5", "5\t9\t11\t4", "6\t9\t10\t1"])
  write(tmp_path / "test.tsv", ["5\t9\t12\t2", "6\t9\t11\t5"])
  data = gdata.load_ratings_file(str(tmp_path / "train.tsv"),
                                 str(tmp_path / "test.tsv"),
                                 columns=(0, 2, 3))
  assert data.scale == gdata.RatingScale(1.0, 5.0, 0.5)
  # Ids are text unless numbers are asked for (ids="numbers").
  np.testing.assert_array_equal(data.user_ids, [b"5", b"6"])
  np.testing.assert_array_equal(data.item_ids, [b"10", b"11", b"12"])
  assert data.train.count() == 3 and data.test.count() == 2
  assert any("0 test rating(s) by 0 user(s) and 1 rating(s) of 1 item(s) "
             "without a training rating are evaluated" in n
             for n in data.notes)


def test_cold_users_are_dropped_or_kept_and_counted(tmp_path):
  write(tmp_path / "train.csv", ["a,x,1", "a,y,2", "b,x,3"])
  write(tmp_path / "test.csv", ["b,y,4", "c,x,5", "c,y,2"])
  dropped = gdata.load_ratings_file(str(tmp_path / "train.csv"),
                                    str(tmp_path / "test.csv"),
                                    cold_users="drop")
  assert dropped.test.count() == 1
  assert any("2 test rating(s) by 1 user(s) with no training rating dropped"
             in n for n in dropped.notes)
  kept = gdata.load_ratings_file(str(tmp_path / "train.csv"),
                                 str(tmp_path / "test.csv"))  # the default
  assert kept.test.count() == 3
  assert any("2 test rating(s) by 1 user(s)" in n for n in kept.notes)


@pytest.mark.parametrize("lines,message", [
    ([], "empty"),
    (["u,i,r", "1,2,x"],
     r"line 2: field 3 \(a rating\) must be a number, got 'x'"),
    (["1,2,3", "1,2"], "line 2: expected 3 fields"),
    (["1,2,3", "1,5,9", "4,2,5", "4,5,6"], None),  # the scale from the data
])
def test_bad_files_name_the_line(tmp_path, lines, message):
  path = tmp_path / "r.csv"
  path.write_text("\n".join(lines))
  if message is None:
    assert gdata.load_ratings_file(str(path), test_fraction=0.5,
                                   cold_users="keep").scale == (
                                       gdata.RatingScale(3.0, 9.0, 1.0))
    return
  with pytest.raises(gdata.DataFormatError, match=message):
    gdata.load_ratings_file(str(path))


def test_ratings_outside_a_declared_scale(tmp_path):
  write(tmp_path / "r.csv", ["1,2,3", "1,3,7"])
  with pytest.raises(gdata.DataFormatError,
                     match=r"r.csv, line 2: rating 7 is not on the scale"):
    gdata.load_ratings_file(str(tmp_path / "r.csv"), scale=gdata.STARS)


def test_duplicates_last_kept_by_default_or_rejected(tmp_path):
  """A real file's pair rated twice keeps its last rating by default, with
  a note that counts them and names the strict check."""
  write(tmp_path / "r.csv", ["1,2,3", "1,3,4", "1,2,5", "2,2,1", "2,3,2"])
  with pytest.raises(gdata.DataFormatError,
                     match=r"line 3: duplicate rating of item 2 by user 1 "
                     r"\(first at line 1\)"):
    gdata.load_ratings_file(str(tmp_path / "r.csv"), duplicates="error")
  data = gdata.load_ratings_file(str(tmp_path / "r.csv"),
                                 test_fraction=0.5, seed=0, cold_users="keep")
  assert data.train.count() + data.test.count() == 4
  everything = {(int(data.item_ids[i]), int(data.user_ids[u])): v
                for part in (data.train, data.test)
                for i, u, v in zip(part.items, part.users, part.values)}
  assert everything[(2, 1)] == 5  # the last one
  assert any("1 pair(s) rated more than once (first: item 2 by user 1, "
             "line 3); the last rating of each is kept (duplicates='error'"
             in n for n in data.notes), data.notes


def test_test_file_sharing_nothing_with_training(tmp_path):
  write(tmp_path / "train.csv", ["a,x,1", "b,y,2"])
  write(tmp_path / "test.csv", ["c,z,4"])
  with pytest.raises(gdata.DataFormatError, match="shares no user and no item"):
    gdata.load_ratings_file(str(tmp_path / "train.csv"),
                            str(tmp_path / "test.csv"))


def test_encoding_id_overflow_and_bom(tmp_path):
  (tmp_path / "u16.csv").write_text("1,2,3\n", encoding="utf-16")
  with pytest.raises(gdata.DataFormatError, match="encoding is UTF-16"):
    gdata.load_ratings_file(str(tmp_path / "u16.csv"))
  base = tmp_path / "ml"
  write(base / "u1.base", ["99999999999999999999\t1\t5\t1", "1\t2\t3\t1"])
  write(base / "u1.test", ["1\t1\t4\t1"])
  with pytest.raises(gdata.DataFormatError,
                     match=r"u1.base, line 1: field 1 must be a non-negative "
                     r"integer id|u1.base, line 1: id '9+' has more than 18"):
    gdata.load_ml_100k(str(base))
  (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfuser,item,rating\n"
                                     b"1,2,3\n2,2,4\n")
  data = gdata.load_ratings_file(str(tmp_path / "bom.csv"), test_fraction=0.5,
                                 cold_users="keep")
  np.testing.assert_array_equal(data.user_ids, [b"1", b"2"])


def test_cache_follows_the_file_and_never_lands_beside_it(tmp_path,
                                                          monkeypatch):
  data_dir, cache = tmp_path / "data", tmp_path / "cache"
  path = data_dir / "r.csv"
  write(path, ["1,2,3", "2,2,4"])
  first = gdata.read_ratings(str(path), cache_dir=str(cache))
  assert os.listdir(data_dir) == ["r.csv"]
  assert len([n for n in os.listdir(cache) if n.endswith(".npz")]) == 1
  write(path, ["1,2,3", "2,2,5", "3,1,1"])
  os.utime(path, ns=(1, 1))  # another mtime, as after a re-download
  second = gdata.read_ratings(str(path), cache_dir=str(cache))
  assert second.values.tolist() == [3, 5, 1] and first.values.tolist() == [3,
                                                                           4]
  assert len([n for n in os.listdir(cache) if n.endswith(".npz")]) == 1
  # A file of the same name elsewhere has a cache of its own.
  other = tmp_path / "other" / "r.csv"
  write(other, ["7,7,1", "8,8,2"])
  assert gdata.read_ratings(str(other), cache_dir=str(cache)).values.tolist(
      ) == [1, 2]
  assert len([n for n in os.listdir(cache) if n.endswith(".npz")]) == 2
  # The default folder comes from the environment; "none" writes nothing.
  monkeypatch.setenv("GLOCAL_JAX_CACHE", str(tmp_path / "root"))
  assert gdata.default_cache_dir() == str(tmp_path / "root" / "parsed")
  monkeypatch.delenv("GLOCAL_JAX_CACHE")
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert gdata.default_cache_dir() == str(tmp_path / "xdg" / "glocal_jax" /
                                          "parsed")
  gdata.read_ratings(str(path))
  assert os.listdir(tmp_path / "xdg" / "glocal_jax" / "parsed")
  gdata.read_ratings(str(other), cache_dir="none")
  assert os.listdir(other.parent) == ["r.csv"]


def test_blank_lines_found_in_every_block(tmp_path, monkeypatch):
  """Lines of nothing but spaces, tabs and CRs are skipped wherever they
  are (blocks of 2 lines here), and each row keeps its line number, as
  Python's own split says."""
  text = ("1 10 4\n \t \r\n2 20 3\n\n\t\n3 30 5\n \n4 40 1\n"
          "   \n5 50 2\r\n\r\n")
  path = tmp_path / "r.txt"
  path.write_bytes(text.encode())
  expected = [(n, line.split()) for n, line in
              enumerate(text.split("\n"), 1) if line.strip()]
  monkeypatch.setattr(parsing, "LINES_PER_BLOCK", 2)
  table = parsing.read_table(str(path))
  assert table.lines.tolist() == [n for n, _ in expected]
  for j in range(3):
    assert table.columns[j].tolist() == [float(f[j]) if j == 2 else
                                         int(f[j]) for _, f in expected]


def test_blocks_of_lines_read_as_the_whole_file(tmp_path, monkeypatch):
  """Lines are parsed in blocks; an id column that is text in a later
  block is text in all (no integer ids lose their leading zeros), and an
  all-digit id too long for int64 is an error in whichever block."""
  path = tmp_path / "r.csv"
  path.write_text("007,1,4\n8,2,3.5\n9,1,2\nu_10,3,5\n11,2,1\n")
  whole = parsing.read_table(str(path))
  monkeypatch.setattr(parsing, "LINES_PER_BLOCK", 2)
  blocks = parsing.read_table(str(path))
  assert blocks.columns[0].tolist() == [b"007", b"8", b"9", b"u_10", b"11"]
  for a, b in zip(whole.columns + [whole.lines],
                  blocks.columns + [blocks.lines]):
    np.testing.assert_array_equal(a, b)
  assert blocks.columns[1].dtype == np.int64
  path.write_text("1,1,4\n2,2,3\n3,1,2\n" + "9" * 19 + ",3,5\n")
  with pytest.raises(parsing.ParseError, match="line 4: id '9999"):
    parsing.read_table(str(path))


@pytest.mark.parametrize("kind", ["gz", "bz2", "zip"])
def test_compressed_files_read_as_their_content(tmp_path, kind):
  lines = ["user,item,rating", "u1,i1,4", "u1,i2,3", "u2,i1,5", "u2,i2,2"]
  text = ("\n".join(lines) + "\n").encode()
  path = tmp_path / f"r.csv.{kind}"
  if kind == "gz":
    path.write_bytes(gzip.compress(text))
  elif kind == "bz2":
    path.write_bytes(bz2.compress(text))
  else:
    with zipfile.ZipFile(path, "w") as archive:
      archive.writestr("ratings.csv", text)
  plain = tmp_path / "r.csv"
  plain.write_bytes(text)
  read = lambda p: gdata.load_ratings_file(str(p), test_fraction=0.0)
  a, b = read(path), read(plain)
  np.testing.assert_array_equal(a.train.to_dense(), b.train.to_dense())
  if kind == "zip":
    with zipfile.ZipFile(path, "a") as archive:
      archive.writestr("more.csv", text)
    with pytest.raises(gdata.DataFormatError, match="zip archive of 2 files"):
      read(path)


def test_a_timestamp_taken_as_the_rating_is_refused(tmp_path):
  """MovieLens lines user,item,rating,timestamp read with --columns=0,1,3:
  the timestamps are no rating scale, and the message says what to do."""
  rows = [f"{u},{i},{1 + (u + i) % 5},{874965758 + 97 * (7 * u + i)}"
          for u in range(40) for i in range(30)]
  write(tmp_path / "r.csv", rows)
  with pytest.raises(gdata.DataFormatError,
                     match=r"r.csv: field 4, taken as the rating, holds 303 "
                     r"distinct values from 874965760 to .*--columns="
                     r"USER,ITEM,RATING.*--rating_scale"):
    gdata.load_ratings_file(str(tmp_path / "r.csv"), columns=(0, 1, 3))
  assert gdata.load_ratings_file(str(tmp_path / "r.csv")).scale == (
      gdata.STARS)
