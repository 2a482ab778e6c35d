r"""Paper Table 2: global kernel size, number of conv layers, aggregation.

  python experiments/table2.py --datasets=ml-100k,douban --seeds=5 \
      --data_root=../shared/data --output_dir=DIR

Variants of GLocal-K, one factor at a time from the paper's setting
(3x3 kernel, 1 conv layer, weighted aggregation). The variants differ in the
global kernel only, so one pre-training run per dataset and protocol serves
them all (a row's ``seconds`` include it); a variant whose autoencoder would
be initialised differently is pre-trained on its own.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import jax
import numpy as np

import glocal_jax as gj
from glocal_jax import runs

import cli  # pylint: disable=g-import-not-at-top
import reporting
import rows as table_rows

cli.define_sweep_flags()
cli.define_variants_flag()
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS

PAPER = {  # Table 2 of the paper: (ml-100k, ml-1m, douban).
    "3x3, 1 layer, weighted": (0.890, 0.822, 0.721),
    "5x5": (0.891, 0.823, 0.723), "7x7": (0.891, 0.823, 0.723),
    "2": (0.893, 0.827, 0.725), "3": (0.897, 0.848, 0.732),
    "element-wise (mean)": (0.894, 0.822, 0.730),
}
COLUMN = {"ml-100k": 0, "ml-1m": 1, "douban": 2}


def same_autoencoder_init(a: gj.GLocalKConfig, b: gj.GLocalKConfig,
                          shape: tuple[int, int]) -> bool:
  """Whether the seeds' autoencoder initialisations of ``a`` and ``b``
  agree, so that ``b`` may fine-tune from ``a``'s pre-training."""
  seeds = list(range(FLAGS.seeds))
  return all(np.array_equal(x, y) for x, y in zip(
      jax.tree.leaves(runs.init_seeds(a, seeds, shape)["autoencoder"]),
      jax.tree.leaves(runs.init_seeds(b, seeds, shape)["autoencoder"]),
      strict=True))


def main(argv):
  cli.check_sweep_flags(argv)
  variants = cli.check_variants()
  rows = []
  seeds = list(range(FLAGS.seeds))
  for name, data in cli.sweep_datasets():
    base = cli.config_for(name)
    for protocol in FLAGS.protocols:
      # The variants change the global kernel only: pre-training is shared.
      pretrained, seconds = runs.pretrain_snapshots(
          base, table_rows.protocol_data(data, protocol), seeds,
          [base.pretrain_epochs], log=table_rows.log_line,
          epoch_fns=table_rows.batched_epoch_fns(base))[base.pretrain_epochs]
      for factor, value, overrides in variants:
        config = cli.config_for(name, **overrides)
        snapshot = None
        if same_autoencoder_init(base, config, data.shape):
          params = runs.init_seeds(config, seeds, data.shape)
          snapshot = ({**params, "autoencoder": pretrained["autoencoder"]},
                      seconds)
        row = table_rows.run_row(data, config, protocol, snapshot=snapshot,
                                 model="glocal-k", factor=factor,
                                 variant=value)
        row["paper_rmse"] = (PAPER[value][COLUMN[name]]
                             if name in COLUMN else None)
        rows.append(row)
        reporting.write_rows(FLAGS.output_dir, "table2", rows)


if __name__ == "__main__":
  app.run(main)
