r"""How each representation scales: time per evaluation and peak memory.

  python experiments/scaling.py --points=ml-100k,ml-1m,ml-10m \
      --representations=dense,blocked,sparse,auto --output_dir=DIR

For each point, synthetic ratings of a real data set's shape and rating
count (or another count: ``ml-1m:300000``), with skewed item and user
popularity (``--skew``, see :func:`glocal_jax.data.synthetic`), and the
``--preset``'s model; for each representation, ``experiments/benchmark.py
--mode=evaluation`` in a fresh process of its own: the median time of one
loss-and-gradient evaluation of each phase, and the process's peak memory.
A row whose estimated memory (:func:`glocal_jax.representations.
estimate_memory_bytes`) exceeds the device's is skipped with the estimate;
a row that fails keeps its error.

Writes DIR/scaling.json (``provenance`` of this sweep and ``rows``, each
with the provenance of its own benchmark run, updated after every point) and
DIR/scaling.png (log-log: milliseconds per evaluation and peak memory
against ratings, a line per representation and phase).
"""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import glocal_jax as gj
from glocal_jax.plan import choose_plan
from glocal_jax.plan import device_memory_bytes
from glocal_jax.plan import estimate_memory_bytes
from glocal_jax.plan import parse_representation

import cli  # pylint: disable=g-import-not-at-top
from provenance import provenance
from reporting import pyplot
from reporting import write_json

# name -> (items, users, ratings) of the real data sets.
SHAPES = {
    "ml-100k": (1682, 943, 100_000),
    "ml-1m": (3706, 6040, 1_000_209),
    "ml-10m": (10677, 69878, 10_000_054),
    "ml-20m": (26744, 138493, 20_000_263),
    "netflix": (17770, 480189, 100_480_507),
}

flags.DEFINE_list("points", list(SHAPES), "Points, each a shape of "
                  f"{list(SHAPES)}, optionally with a rating count: "
                  "ml-1m:300000.")
flags.DEFINE_list("representations", ["dense", "blocked", "sparse", "auto"],
                  "Representations (see benchmark.py).")
flags.DEFINE_string("preset", "ml-1m", "Model and schedule preset.")
flags.DEFINE_float("skew", 1.5, "Popularity skew of items and users.")
flags.DEFINE_integer("repeats", 3, "Timed evaluations per phase.")
flags.DEFINE_float("test_fraction", 0.1, "Share of the ratings held out "
                   "(not trained on).")
flags.DEFINE_string("output_dir", None, "Where scaling.json/.png go.")
FLAGS = flags.FLAGS


def parse_point(text: str) -> tuple[str, int, int, int]:
  """``"shape[:ratings]"`` -> (shape, items, users, ratings)."""
  name, _, count = text.partition(":")
  if name not in SHAPES:
    cli.fail(f"unknown shape {name!r}; known: {list(SHAPES)}")
  items, users, ratings = SHAPES[name]
  if count:
    try:
      ratings = int(count)
    except ValueError:
      cli.fail(f"--points: {text!r} needs an integer rating count")
  if not 0 < ratings <= items * users:
    cli.fail(f"--points: {text!r} asks for {ratings} ratings of a "
                f"{items} x {users} matrix")
  return name, items, users, ratings


def run_point(point: str, representation: str) -> dict:
  """One representation at one point, in benchmark.py's own process."""
  name, items, users, ratings = parse_point(point)
  head = {"point": point, "shape": name, "items": items, "users": users,
          "ratings": ratings, "representation": representation}
  config = gj.preset(FLAGS.preset, representation=representation)
  train = round(ratings * (1 - FLAGS.test_fraction))
  plan = choose_plan(
      (items, users), train, kernel_size=config.kernel_size,
      conv_layers=config.conv_layers, representation=representation)
  estimate = estimate_memory_bytes(
      plan, (items, users), train, hidden=config.hidden, n_dim=config.n_dim,
      kernel_size=config.kernel_size, conv_layers=config.conv_layers,
      history_size=config.history_size)
  head.update(plan=plan.to_dict(), estimated_memory_bytes=estimate)
  available = device_memory_bytes()
  if estimate > available:
    print(f"-- {point} {representation}: skipped, needs about "
          f"{estimate / 2**30:.1f} GiB of {available / 2**30:.1f} GiB")
    return {**head, "skipped": f"estimated {estimate / 2**30:.1f} GiB, "
                               f"{available / 2**30:.1f} GiB available"}
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "bench.json")
    proc = subprocess.run(
        [sys.executable,
         os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "benchmark.py"),
         "--mode=evaluation", "--dataset=synthetic",
         f"--synthetic_items={items}", f"--synthetic_users={users}",
         f"--synthetic_ratings={ratings}", f"--synthetic_skew={FLAGS.skew}",
         f"--synthetic_test_fraction={FLAGS.test_fraction}",
         f"--preset={FLAGS.preset}", f"--representations={representation}",
         f"--repeats={FLAGS.repeats}", f"--output_json={out}"],
        stdout=sys.stdout, stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
      return {**head, "error": (proc.stderr.strip().splitlines()
                                or ["failed"])[-1]}
    with open(out) as f:
      result = json.load(f)
  return {**head, **result["rows"][0], "density": ratings / (items * users),
          "provenance": result["provenance"]}


def plot(path: str, rows: list[dict]) -> None:
  plt = pyplot()
  if plt is None:
    return
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
  done = [r for r in rows if "pretrain" in r]
  for representation in dict.fromkeys(r["representation"] for r in done):
    own = sorted((r for r in done if r["representation"] == representation),
                 key=lambda r: r["ratings"])
    x = [r["ratings"] for r in own]
    for phase, style in (("pretrain", "o--"), ("finetune", "o-")):
      left.plot(x, [r[phase]["ms_per_evaluation"] for r in own], style,
                label=f"{representation}, {phase}")
    right.plot(x, [r["peak_memory_bytes"] / 2**30 for r in own], "o-",
               label=representation)
  for ax, label in ((left, "ms per loss-and-gradient evaluation"),
                    (right, "peak memory (GiB)")):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("ratings")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  print(f"wrote {path}")


def main(argv):
  if len(argv) > 1:
    cli.fail(f"unexpected arguments {argv[1:]}")
  if not FLAGS.output_dir:
    cli.fail("--output_dir is required")
  cli.check_output_dir(FLAGS.output_dir)
  for point in FLAGS.points:
    parse_point(point)
  for r in FLAGS.representations:
    try:
      parse_representation(r)
    except ValueError as e:
      cli.fail(str(e))
  rows = []
  for point in FLAGS.points:
    for representation in FLAGS.representations:
      rows.append(run_point(point, representation))
      write_json(os.path.join(FLAGS.output_dir, "scaling.json"),
                        {"provenance": provenance(), "rows": rows})
  plot(os.path.join(FLAGS.output_dir, "scaling.png"), rows)


if __name__ == "__main__":
  app.run(main)
