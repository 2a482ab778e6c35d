r"""Paper Figure 3: test RMSE vs number of pre-training epochs.

  python experiments/figure3.py --datasets=ml-100k,douban --seeds=5 \
      --data_root=../shared/data --output_dir=DIR

GLocal-K with 0, 10, ..., 60 pre-training epochs (0: fine-tuning from the
initialisation) and the preset's fine-tuning schedule. Writes
figure3.json/.csv and figure3.png.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import common  # pylint: disable=g-import-not-at-top

flags.DEFINE_list("pretrain_epoch_grid", ["0", "10", "20", "30", "40", "50",
                                          "60"], "Pre-training epochs.")
common.define_sweep_flags()
FLAGS = flags.FLAGS


def main(argv):
  common.check_sweep_flags(argv)
  grid = common.number_list("pretrain_epoch_grid", int, lambda e: e >= 0,
                            ">= 0")
  rows = []
  for name, data in common.sweep_datasets():
    for epochs in grid:
      config = common.config_for(name, pretrain_epochs=epochs)
      for protocol in FLAGS.protocols:
        row = common.run_row(data, config, protocol, model="glocal-k",
                             pretrain_epochs=epochs)
        rows.append(row)
        common.write_rows("figure3", rows)
  panels = {}
  for row in rows:
    xs, ys = panels.setdefault(row["dataset"], {}).setdefault(
        f"{row['protocol']} protocol", ([], []))
    xs.append(row["pretrain_epochs"])
    ys.append(row["rmse_mean"])
  common.plot("figure3", panels, "pre-training epochs")


if __name__ == "__main__":
  app.run(main)
