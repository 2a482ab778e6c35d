r"""Trains GLocal-K on one dataset with the paper's presets.

  python experiments/train.py --dataset=ml-100k \
      --data_dir=../shared/data/ml-100k --output_dir=/tmp/run

Writes OUTPUT_DIR/metrics.json (history, best = paper protocol, final, and
selected = validation protocol when --validation_fraction > 0).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import common  # pylint: disable=g-import-not-at-top
from glocal_jax import data as gdata
from provenance import provenance
from glocal_jax import experiment
from glocal_jax.training import NonFiniteError

common.define_data_flags()
common.define_model_flags()
flags.DEFINE_string("output_dir", None, "Where metrics.json goes.")
flags.DEFINE_integer("seed", 0, "Seed of the parameter initialisation.")
flags.DEFINE_bool("pretrain_only", False,
                  "Pre-train only (SparseFC): no fine-tuning epochs.")
flags.DEFINE_float("validation_fraction", 0.0,
                   "Share of training ratings held out for model selection "
                   "(honest protocol); 0 disables it.")
flags.DEFINE_integer("validation_seed", 0, "Seed of the validation split.")
flags.DEFINE_float("ml1m_test_fraction", 0.1, "ML-1M: test share.")
flags.DEFINE_integer("ml1m_seed", 1234, "ML-1M: split seed.")
flags.DEFINE_string("checkpoint_dir", None,
                    "Write a checkpoint here after every epoch.")
flags.DEFINE_bool("resume", False,
                  "Continue from the checkpoint in --checkpoint_dir.")
flags.DEFINE_integer("stop_after", None,
                     "Stop after this many epochs (resume later).")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    common.fail(f"unexpected arguments {argv[1:]}")
  if not FLAGS.output_dir:
    common.fail("--output_dir is required")
  if FLAGS.resume and not FLAGS.checkpoint_dir:
    common.fail("--resume needs --checkpoint_dir")
  if FLAGS.stop_after is not None and FLAGS.stop_after <= 0:
    common.fail(f"--stop_after must be positive, got {FLAGS.stop_after}")
  if not 0.0 <= FLAGS.validation_fraction < 1.0:
    common.fail("--validation_fraction must be in [0, 1), got "
                f"{FLAGS.validation_fraction}")
  overrides = {"finetune_epochs": 0} if FLAGS.pretrain_only else {}
  config = common.config_for(FLAGS.dataset, **overrides)
  options = ({"test_fraction": FLAGS.ml1m_test_fraction,
              "seed": FLAGS.ml1m_seed} if FLAGS.dataset == "ml-1m" else {})
  data = common.load(FLAGS.dataset, FLAGS.data_dir, **options)
  if FLAGS.validation_fraction > 0:
    data = gdata.split_validation(data, FLAGS.validation_fraction,
                                  FLAGS.validation_seed)
  print(data.summary())
  print(f"config: {config}")
  try:
    result = experiment.fit(config, data, FLAGS.seed,
                            checkpoint_dir=FLAGS.checkpoint_dir,
                            resume=FLAGS.resume, stop_after=FLAGS.stop_after)
  except NonFiniteError as e:
    kept = (f" The last good checkpoint is kept in {FLAGS.checkpoint_dir}."
            if FLAGS.checkpoint_dir else "")
    common.fail(f"{e}{kept}")
  except ValueError as e:
    common.fail(str(e))
  result["validation_fraction"] = FLAGS.validation_fraction
  result["provenance"] = provenance()
  path = os.path.join(FLAGS.output_dir, "metrics.json")
  common.write_json(path, result)
  if "best" in result:
    print(f"best ({result['phase']}, paper protocol): {result['best']}")
    print(f"final: {result['final']}")
  if "selected" in result:
    print(f"selected on validation: {result['selected']}")
  print(f"{result['seconds']:.1f}s on {result['device']}; wrote {path}")


if __name__ == "__main__":
  app.run(main)
