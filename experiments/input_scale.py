r"""Table 2 diagnosis: how each variant scales the fine-tuning input.

  python experiments/input_scale.py --datasets=ml-100k,douban --seeds=5 \
      --data_root=../shared/data --output_dir=DIR

After the paper's pre-training, and for each variant of Table 2 with its
freshly initialised kernel banks (the start of fine-tuning), measures the
global kernel-based rating matrix ``R_hat`` (paper Eq. 6) that fine-tuning
feeds to the pre-trained autoencoder:

* ``max_abs_kernel``: the largest ``|GK|`` entry of the first convolution
  (Eq. 5);
* ``input_observed_mean`` / ``input_max``: ``R_hat`` averaged over the
  observed training ratings, and its largest entry;
* ``saturated_fraction``: the share of first-hidden-layer sigmoid units
  whose pre-activation exceeds ``SATURATION`` in magnitude (their derivative
  is below 3% of its peak).

A reference row (``variant`` ``"pre-training input R"``) measures the
rating matrix itself, which the autoencoder was pre-trained on. Values are
means over the seeds. Writes ``DIR/input_scale.json`` and ``.csv``.
"""

import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import jax
import jax.numpy as jnp
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
SATURATION = 5.0
REFERENCE = "pre-training input R"


def input_stats(autoencoder, x: jax.Array, mask: jax.Array) -> dict:
  """Scale of an autoencoder input ``x (m, n)`` and the saturation it causes
  in the first hidden layer; ``mask (m, n)`` marks the observed ratings."""
  (first,), _ = gj.kernelised_layers(autoencoder[:1])
  pre_activation = x @ first["w"] + first["b"]  # (m, hidden[0])
  return {"input_observed_mean": jnp.sum(mask * x) / jnp.sum(mask),
          "input_max": jnp.max(x),
          "saturated_fraction": jnp.mean(
              jnp.abs(pre_activation) > SATURATION)}


def variant_stats(params, ratings: jax.Array, mask: jax.Array,
                  config: gj.GLocalKConfig) -> dict:
  """:func:`input_stats` of ``R_hat`` under ``config``'s global kernel."""
  pooled = gj.item_average_pooling(
      gj.autoencoder(params["autoencoder"], ratings)[0])
  kernel = gj.global_kernel(pooled, params["kernel_banks"][0],
                            config.dot_scale, config.aggregation)
  r_hat = gj.global_kernel_ratings(params, ratings, config.dot_scale,
                                   config.aggregation)
  return {"max_abs_kernel": jnp.max(jnp.abs(kernel)),
          **input_stats(params["autoencoder"], r_hat, mask)}


def seed_means(stats: dict) -> dict:
  """Per-seed statistics ``{name: (s,)}`` -> ``{name: mean}``."""
  return {k: float(np.mean(v)) for k, v in stats.items()}


def main(argv):
  cli.check_sweep_flags(argv)
  variants = cli.check_variants()
  rows = []
  seeds = list(range(FLAGS.seeds))
  for name, data in cli.sweep_datasets():
    base = cli.config_for(name)
    for protocol in FLAGS.protocols:
      train = table_rows.protocol_data(data, protocol)
      ratings = train.train.to_dense()
      mask = (ratings > 0).astype(jnp.float32)
      pretrained, _ = runs.pretrain_snapshots(
          base, train, seeds, [base.pretrain_epochs],
          log=table_rows.log_line,
          epoch_fns=table_rows.batched_epoch_fns(base))[base.pretrain_epochs]
      ae = pretrained["autoencoder"]
      head = {"dataset": name, "protocol": protocol, "seeds": len(seeds),
              "pretrain_epochs": base.pretrain_epochs}
      reference = jax.vmap(input_stats, (0, None, None))(ae, ratings, mask)
      rows.append({**head, "factor": "reference", "variant": REFERENCE,
                   "max_abs_kernel": None, **seed_means(reference)})
      for factor, value, overrides in variants:
        config = cli.config_for(name, **overrides)
        params = {**runs.init_seeds(config, seeds, data.shape),
                  "autoencoder": ae}
        stats = jax.vmap(functools.partial(variant_stats, config=config),
                         (0, None, None))(params, ratings, mask)
        rows.append({**head, "factor": factor, "variant": value,
                     **seed_means(stats)})
        print(f"  {name} {protocol} {value}: {rows[-1]}")
      reporting.write_rows(FLAGS.output_dir, "input_scale", rows)


if __name__ == "__main__":
  app.run(main)
