r"""Loading a large ratings file: parse time and peak memory, then the cache.

  python experiments/parse_benchmark.py --lines=20000263 --output_json=F

Writes an ML-20M-format ``ratings.csv`` (header ``userId,movieId,rating,
timestamp``; ``--lines`` ratings of distinct (user, movie) pairs, sorted by
user then movie as GroupLens ships it; half-star ratings; ML-20M's user and
movie counts) into ``--work_dir`` (a temporary folder by default), then
loads it with ``glocal_jax.data.load_dataset("ml-20m", DIR)`` twice, each
time in a fresh process: the first parses the text and writes the cache
beside it, the second reads the cache. Records each load's seconds and the
process's peak resident memory, the ratings loaded (checked against the
lines written), and the provenance.

``--readers=glocal_jax,pyarrow,pandas`` also times the text parse alone
against other readers, each in a fresh process (imports not timed) and on
the same file: the user, movie and rating columns of every line into NumPy
arrays
(glocal_jax.data.parsing.read_table as the loader calls it;
``pyarrow.csv.read_csv``; ``pandas.read_csv`` with its C engine). pyarrow
and pandas are not dependencies of glocal_jax: install them to compare.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import numpy as np

import cli  # pylint: disable=g-import-not-at-top
from provenance import provenance
from reporting import write_json

flags.DEFINE_integer("lines", 20_000_263, "Ratings to write (ML-20M has "
                     "20,000,263).")
flags.DEFINE_integer("users", 138_493, "Distinct users (ML-20M's count).")
flags.DEFINE_integer("movies", 26_744, "Distinct movies (ML-20M's count).")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic ratings.")
flags.DEFINE_string("work_dir", None, "Folder for ratings.csv and its cache "
                    "(default: a temporary folder, removed afterwards).")
flags.DEFINE_string("output_json", None, "Where the timings go.")
flags.DEFINE_list("readers", [], "Text readers to time on the same file "
                  "(each in a fresh process), of glocal_jax, pyarrow, "
                  "pandas.")
FLAGS = flags.FLAGS

# One load in a fresh process: its seconds, peak RSS and what it loaded.
_LOAD = """
import json, resource, sys, time
from glocal_jax import data
tic = time.perf_counter()
d = data.load_dataset("ml-20m", sys.argv[1])
seconds = time.perf_counter() - tic
print(json.dumps({
    "seconds": round(seconds, 2),
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "ratings": int(d.train.count() + d.test.count()), "shape": list(d.shape)}))
"""

# One parse of the three columns in a fresh process, by each reader: its
# imports (not timed), then the parse (timed).
_PARSE = {
    "glocal_jax": ("from glocal_jax.data import parsing", """
t = parsing.read_table(path, (0, 1, 2), kinds=("id", "id", "number"))
columns = t.columns
"""),
    "pyarrow": ("from pyarrow import csv", """
t = csv.read_csv(path, convert_options=csv.ConvertOptions(
    include_columns=["userId", "movieId", "rating"]))
columns = [t.column(i).to_numpy() for i in range(3)]
"""),
    "pandas": ("import pandas", """
t = pandas.read_csv(path, usecols=[0, 1, 2], engine="c")
columns = [t.iloc[:, i].to_numpy() for i in range(3)]
"""),
}
_TIMED_PARSE = """
import json, resource, sys, time
{imports}
path = sys.argv[1]
tic = time.perf_counter()
{parse}
seconds = time.perf_counter() - tic
print(json.dumps({{
    "seconds": round(seconds, 2),
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "ratings": int(len(columns[2])),
    "rating_sum": float(columns[2].sum())}}))
"""


def write_ratings(path: str, lines: int, users: int, movies: int,
                  seed: int) -> None:
  """``lines`` distinct (user, movie) ratings in ML-20M's format, written in
  chunks; movie ids are spread over 1..131262 as ML-20M's are."""
  if lines > users * movies:
    cli.fail(f"--lines={lines} exceeds --users x --movies.")
  rng = np.random.default_rng(seed)
  cells = np.unique(rng.integers(0, users * movies, int(lines * 1.01) + 10))
  while cells.size < lines:  # rare: too many collisions
    cells = np.unique(np.concatenate(
        [cells, rng.integers(0, users * movies, lines - cells.size + 10)]))
  cells = np.sort(rng.choice(cells, lines, replace=False))
  movie_ids = np.sort(rng.choice(131_262, movies, replace=False)) + 1
  with open(path, "w") as f:
    f.write("userId,movieId,rating,timestamp\n")
    for chunk in np.array_split(cells, max(1, lines // 1_000_000)):
      user = chunk // movies + 1
      movie = movie_ids[chunk % movies]
      stars = rng.integers(1, 11, chunk.size) / 2
      stamp = rng.integers(789_652_009, 1_427_784_002, chunk.size)
      f.write("".join(f"{u},{m},{r:.1f},{t}\n" for u, m, r, t in zip(
          user.tolist(), movie.tolist(), stars.tolist(), stamp.tolist())))


def timed_run(code: str, path: str) -> dict:
  """Runs ``code`` on ``path`` (a data folder or a file: its ``argv[1]``)
  in a fresh process: its JSON line, and the process's seconds."""
  tic = time.perf_counter()
  proc = subprocess.run([sys.executable, "-c", code, path],
                        capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    cli.fail(f"loading {path} failed: {proc.stderr.strip()[-2000:]}")
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  out["process_seconds"] = round(time.perf_counter() - tic, 2)
  return out


def main(argv):
  del argv
  if FLAGS.output_json:
    cli.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.output_json)))
  if FLAGS.lines <= 0:
    cli.fail("--lines must be positive.")
  unknown = [r for r in FLAGS.readers if r not in _PARSE]
  if unknown:
    cli.fail(f"--readers: unknown {unknown}; known: {list(_PARSE)}")
  work = FLAGS.work_dir or tempfile.mkdtemp(prefix="parse_benchmark_")
  os.makedirs(work, exist_ok=True)
  path = os.path.join(work, "ratings.csv")
  try:
    tic = time.perf_counter()
    write_ratings(path, FLAGS.lines, FLAGS.users, FLAGS.movies, FLAGS.seed)
    print(f"wrote {FLAGS.lines} ratings ({os.path.getsize(path)} bytes) in "
          f"{time.perf_counter() - tic:.1f} s", flush=True)
    loads = {"first (parse, write cache)": timed_run(_LOAD, work),
             "second (cache)": timed_run(_LOAD, work)}
    for name, load in loads.items():
      print(f"{name}: {load['seconds']} s, peak RSS "
            f"{load['peak_rss_bytes'] / 2**30:.2f} GiB", flush=True)
      if load["ratings"] != FLAGS.lines:
        cli.fail(f"{name} load returned {load['ratings']} ratings, not the "
                 f"{FLAGS.lines} written.")
    parses = {}
    for reader in FLAGS.readers:
      imports, parse = _PARSE[reader]
      parses[reader] = timed_run(
          _TIMED_PARSE.format(imports=imports, parse=parse), path)
      print(f"parse by {reader}: {parses[reader]['seconds']} s, peak RSS "
            f"{parses[reader]['peak_rss_bytes'] / 2**30:.2f} GiB", flush=True)
      if parses[reader]["ratings"] != FLAGS.lines:
        cli.fail(f"{reader} read {parses[reader]['ratings']} ratings, not "
                 f"the {FLAGS.lines} written.")
    sums = {round(p["rating_sum"], 3) for p in parses.values()}
    if len(sums) > 1:
      cli.fail(f"the readers disagree on the ratings' sum: {parses}")
    result = {"provenance": provenance(), "lines": FLAGS.lines,
              "file_bytes": os.path.getsize(path), "loads": loads,
              **({"parses": parses} if parses else {})}
  finally:
    if FLAGS.work_dir is None:
      shutil.rmtree(work, ignore_errors=True)
  if FLAGS.output_json:
    write_json(FLAGS.output_json, result)
    print(f"wrote {FLAGS.output_json}")


if __name__ == "__main__":
  app.run(main)
