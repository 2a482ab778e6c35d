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

import common  # pylint: disable=g-import-not-at-top
from glocal_jax import data as gdata

flags.DEFINE_list("ratios", ["0.2", "0.4", "0.6", "0.8", "1.0"],
                  "Training ratios.")
flags.DEFINE_integer("subsample_seed", 0, "Seed of the subsampling.")
flags.DEFINE_list("models", ["glocal-k", "sparsefc"],
                  f"Models, of {list(common.ALL_MODELS)}.")
common.define_sweep_flags()
FLAGS = flags.FLAGS


def main(argv):
  common.check_sweep_flags(argv)
  common.check_models(FLAGS.models)
  ratios = common.number_list("ratios", float, lambda r: 0 < r <= 1,
                              "in (0, 1]")
  rows = []
  for name, data in common.sweep_datasets():
    for ratio in ratios:
      subset = gdata.subsample_train(data, ratio, FLAGS.subsample_seed)
      for model in FLAGS.models:
        for protocol in FLAGS.protocols:
          row = common.run_model_row(subset, name, model, protocol,
                                     ratio=ratio)
          rows.append(row)
          common.write_rows("figure2", rows)
  common.plot_rows(os.path.join(FLAGS.output_dir, "figure2.png"), rows,
                   "ratio", lambda r: f"{r['model']}, {r['protocol']} protocol")


if __name__ == "__main__":
  app.run(main)
