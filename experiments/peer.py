r"""GLocal-K against the PyTorch + SciPy peer, whole runs back to back.

  python experiments/peer.py --peer_python=/tmp/peer/bin/python \
      --data_dir=../shared/data/ml-100k --output_json=F

Runs ``../shared/bench/peer_torch.py`` (GLocal-K as a PyTorch user writes it,
SciPy's L-BFGS-B; see its README) and ``experiments/train.py`` with default
flags on ML-100K, one after the other in this process (``--order``), and
times each whole process (start-up, imports, data loading, compilation,
training and evaluation). ``train.py`` starts with an empty compilation
cache, so its compilation is all in. Records both wall times, their ratio,
what each reports of itself (the peer's seconds exclude its imports and
data loading; train.py's metrics.json), and the provenance.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import cli  # pylint: disable=g-import-not-at-top
from provenance import ROOT
from provenance import provenance
from reporting import write_json

flags.DEFINE_string("peer_python", None, "Python of an environment with "
                    "torch, scipy and numpy (the peer's).")
flags.DEFINE_string("peer", os.path.join(ROOT, "..", "shared", "bench",
                                         "peer_torch.py"), "The peer.")
flags.DEFINE_string("data_dir", os.path.join(ROOT, "..", "shared", "data",
                                             "ml-100k"),
                    "ML-100K's u1.base and u1.test.")
flags.DEFINE_string("output_json", None, "Where the comparison goes.")
flags.DEFINE_enum("order", "peer_first", ["peer_first", "ours_first"],
                  "Which process runs first (this VM's speed drifts over "
                  "minutes: run both orders to see it).")
FLAGS = flags.FLAGS


def timed(command: list[str]) -> tuple[float, str]:
  tic = time.perf_counter()
  proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                        check=False)
  seconds = time.perf_counter() - tic
  if proc.returncode != 0:
    cli.fail(f"{command[:2]} failed: {proc.stderr.strip()[-2000:]}")
  return seconds, proc.stdout


def main(argv):
  if len(argv) > 1:
    cli.fail(f"unexpected arguments {argv[1:]}")
  if not (FLAGS.peer_python and FLAGS.output_json):
    cli.fail("--peer_python and --output_json are required")
  cli.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.output_json)))
  with tempfile.TemporaryDirectory() as tmp:
    commands = {
        "peer": [FLAGS.peer_python, FLAGS.peer, FLAGS.data_dir],
        "train.py": [sys.executable,
                     os.path.join(ROOT, "experiments", "train.py"),
                     "--dataset=ml-100k", f"--data_dir={FLAGS.data_dir}",
                     f"--output_dir={tmp}/run",
                     f"--compilation_cache={tmp}/cache"]}
    order = (["peer", "train.py"] if FLAGS.order == "peer_first"
             else ["train.py", "peer"])
    runs = {}
    for name in order:
      runs[name] = timed(commands[name])
      print(f"{name}: {runs[name][0]:.1f}s", flush=True)
    with open(os.path.join(tmp, "run", "metrics.json")) as f:
      ours = json.load(f)
  peer_seconds, out = runs["peer"]
  peer = json.loads(out.strip().splitlines()[-1])
  ours_seconds = runs["train.py"][0]
  print(f"train.py's best RMSE {ours['best']['rmse']}")
  write_json(FLAGS.output_json, {
      "provenance": provenance(), "order": FLAGS.order,
      "peer": {"process_seconds": round(peer_seconds, 1), **peer},
      "ours": {"process_seconds": round(ours_seconds, 1),
               "best_rmse": ours["best"]["rmse"],
               "seconds": ours["seconds"],
               "train_seconds": ours["train_seconds"],
               "evaluation_seconds": ours["evaluation_seconds"],
               "compile_seconds": ours["compile_seconds"],
               "evaluations": sum(h["evaluations"] for h in ours["history"]),
               "iterations": sum(h["iterations"] for h in ours["history"]),
               "optimizer": ours["config"]["optimizer"],
               "plan": ours["plan"]["name"]},
      "speedup": round(peer_seconds / ours_seconds, 2)})
  print(f"speed-up {peer_seconds / ours_seconds:.2f}x; wrote "
        f"{FLAGS.output_json}")


if __name__ == "__main__":
  app.run(main)
