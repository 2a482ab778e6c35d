r"""Paper Table 1: GLocal-K and the baselines without side information.

  python experiments/table1.py --datasets=ml-100k,douban --seeds=5 \
      --data_root=../shared/data --output_dir=DIR

Rows: dataset x model (glocal-k, sparsefc, i-autorec) x protocol, each the
mean +- std over seeds (one vmapped program) and the seeds' ensemble.
``--models`` also takes the mean predictors global-mean, item-mean and
user-mean (no training).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import cli  # pylint: disable=g-import-not-at-top
import reporting
import rows as table_rows

flags.DEFINE_list("models", list(cli.MODELS),
                  f"Models, of {list(cli.ALL_MODELS)}.")
cli.define_sweep_flags()
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS

PAPER = {  # Table 1 of the paper (mean of 5 runs).
    ("ml-100k", "glocal-k"): 0.890, ("ml-1m", "glocal-k"): 0.822,
    ("douban", "glocal-k"): 0.721, ("ml-100k", "sparsefc"): 0.895,
    ("ml-1m", "sparsefc"): 0.824, ("douban", "sparsefc"): 0.730,
    ("ml-1m", "i-autorec"): 0.831,
}


def main(argv):
  cli.check_sweep_flags(argv)
  cli.check_models(FLAGS.models)
  rows = []
  for name, data in cli.sweep_datasets():
    for model in FLAGS.models:
      for protocol in FLAGS.protocols:
        row = table_rows.run_model_row(data, name, model, protocol)
        row["paper_rmse"] = PAPER.get((name, model))
        rows.append(row)
        reporting.write_rows(FLAGS.output_dir, "table1", rows)


if __name__ == "__main__":
  app.run(main)
