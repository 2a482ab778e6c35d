r"""Paper Table 2: global kernel size, number of conv layers, aggregation.

  python experiments/table2.py --datasets=ml-100k,douban --seeds=5 \
      --data_root=../shared/data --output_dir=DIR

Variants of GLocal-K, one factor at a time from the paper's setting
(3x3 kernel, 1 conv layer, weighted aggregation).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import common  # pylint: disable=g-import-not-at-top

common.define_sweep_flags()
FLAGS = flags.FLAGS

# (factor, value, overrides); the first is the paper's setting, run once.
VARIANTS = [
    ("base", "3x3, 1 layer, weighted", {}),
    ("kernel_size", "5x5", {"kernel_size": 5}),
    ("kernel_size", "7x7", {"kernel_size": 7}),
    ("conv_layers", "2", {"conv_layers": 2}),
    ("conv_layers", "3", {"conv_layers": 3}),
    ("aggregation", "element-wise (mean)", {"aggregation": "mean"}),
]
PAPER = {  # Table 2 of the paper: (ml-100k, ml-1m, douban).
    "3x3, 1 layer, weighted": (0.890, 0.822, 0.721),
    "5x5": (0.891, 0.823, 0.723), "7x7": (0.891, 0.823, 0.723),
    "2": (0.893, 0.827, 0.725), "3": (0.897, 0.848, 0.732),
    "element-wise (mean)": (0.894, 0.822, 0.730),
}
COLUMN = {"ml-100k": 0, "ml-1m": 1, "douban": 2}


def main(argv):
  common.check_sweep_flags(argv)
  rows = []
  for name, data in common.sweep_datasets():
    for factor, value, overrides in VARIANTS:
      config = common.config_for(name, **overrides)
      for protocol in FLAGS.protocols:
        row = common.run_row(data, config, protocol, model="glocal-k",
                             factor=factor, variant=value)
        row["paper_rmse"] = (PAPER[value][COLUMN[name]]
                             if name in COLUMN else None)
        rows.append(row)
        common.write_rows("table2", rows)


if __name__ == "__main__":
  app.run(main)
