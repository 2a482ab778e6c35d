r"""Paper Figure 3: test RMSE vs number of pre-training epochs.

  python experiments/figure3.py --datasets=ml-100k,douban --seeds=5 \
      --data_root=../shared/data --output_dir=DIR

GLocal-K with 0, 10, ..., 60 pre-training epochs (0: fine-tuning from the
initialisation) and the preset's fine-tuning schedule. One pre-training run
per dataset and protocol serves the whole grid (snapshots after each grid
epoch; identical to separate runs, as training is deterministic); a row's
``seconds`` include its share of pre-training. Writes figure3.json/.csv and
figure3.png.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from glocal_jax import runs

import cli  # pylint: disable=g-import-not-at-top
import reporting
import rows as table_rows

flags.DEFINE_list("pretrain_epoch_grid", ["0", "10", "20", "30", "40", "50",
                                          "60"], "Pre-training epochs.")
cli.define_sweep_flags()
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


def main(argv):
  cli.check_sweep_flags(argv)
  grid = cli.number_list("pretrain_epoch_grid", int, lambda e: e >= 0,
                         ">= 0")
  rows = []
  for name, data in cli.sweep_datasets():
    config = cli.config_for(name)
    for protocol in FLAGS.protocols:
      print(f"== {name} protocol={protocol}: pre-training to {max(grid)} "
            "epochs")
      snapshots = runs.pretrain_snapshots(
          config, table_rows.protocol_data(data, protocol),
          list(range(FLAGS.seeds)), grid, log=table_rows.log_line,
          epoch_fns=table_rows.batched_epoch_fns(config))
      for epochs in grid:
        row = table_rows.run_row(data, config.replace(pretrain_epochs=epochs),
                             protocol, snapshot=snapshots[epochs],
                             model="glocal-k", pretrain_epochs=epochs)
        rows.append(row)
        reporting.write_rows(FLAGS.output_dir, "figure3", rows)
  reporting.plot_rows(os.path.join(FLAGS.output_dir, "figure3.png"), rows,
                   "pretrain_epochs", lambda r: f"{r['protocol']} protocol")


if __name__ == "__main__":
  app.run(main)
