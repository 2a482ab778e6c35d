r"""Paper Figure 2: test RMSE vs training ratio, GLocal-K vs SparseFC.

  python experiments/figure2.py --datasets=ml-100k,douban --seeds=5 \
      --data_root=../shared/data --output_dir=DIR

Each ratio keeps a seeded share of the training ratings (the test set is
unchanged). ``--models`` adds reference lines, e.g. the mean predictors
item-mean and user-mean. Writes figure2.json/.csv and figure2.png (one panel
per dataset).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from glocal_jax import data as gdata

import cli  # pylint: disable=g-import-not-at-top
import reporting
import rows as table_rows

flags.DEFINE_list("ratios", ["0.2", "0.4", "0.6", "0.8", "1.0"],
                  "Training ratios.")
flags.DEFINE_integer("subsample_seed", 0, "Seed of the subsampling.")
flags.DEFINE_list("models", ["glocal-k", "sparsefc"],
                  f"Models, of {list(cli.ALL_MODELS)}.")
cli.define_sweep_flags()
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


def main(argv):
  cli.check_sweep_flags(argv)
  cli.check_models(FLAGS.models)
  ratios = cli.number_list("ratios", float, lambda r: 0 < r <= 1,
                           "in (0, 1]")
  rows = []
  for name, data in cli.sweep_datasets():
    for ratio in ratios:
      subset = gdata.subsample_train(data, ratio, FLAGS.subsample_seed)
      for model in FLAGS.models:
        for protocol in FLAGS.protocols:
          row = table_rows.run_model_row(subset, name, model, protocol,
                                         ratio=ratio)
          rows.append(row)
          reporting.write_rows(FLAGS.output_dir, "figure2", rows)
  reporting.plot_rows(os.path.join(FLAGS.output_dir, "figure2.png"), rows,
                   "ratio", lambda r: f"{r['model']}, {r['protocol']} protocol")


if __name__ == "__main__":
  app.run(main)
