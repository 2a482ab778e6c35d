r"""Times the test suite as CI runs it, for the README.

  python experiments/time_tests.py --output_json=results/tests_cpu.json

Runs ``python -m pytest -q tests`` in this checkout and records its wall
time, its summary line and the provenance of the run.
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import cli  # pylint: disable=g-import-not-at-top
from provenance import ROOT
from provenance import provenance
from reporting import write_json

flags.DEFINE_string("output_json", None, "Where the timing goes.")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    cli.fail(f"unexpected arguments {argv[1:]}")
  if not FLAGS.output_json:
    cli.fail("--output_json is required")
  cli.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.output_json)))
  tic = time.perf_counter()
  proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests"],
                        cwd=ROOT, capture_output=True, text=True, check=False)
  seconds = time.perf_counter() - tic
  summary = (proc.stdout.strip().splitlines() or [""])[-1]
  write_json(FLAGS.output_json, {"provenance": provenance(),
                                 "seconds": round(seconds, 1),
                                 "returncode": proc.returncode,
                                 "summary": summary})
  print(f"{summary}; {seconds:.0f}s; wrote {FLAGS.output_json}")


if __name__ == "__main__":
  app.run(main)
