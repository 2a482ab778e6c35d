r"""Trains GLocal-K on one dataset with the paper's presets.

  python experiments/train.py --dataset=ml-100k \
      --data_dir=../shared/data/ml-100k --output_dir=/tmp/run
  python experiments/train.py --dataset=file --train_file=ratings.csv \
      --output_dir=/tmp/mine

Writes OUTPUT_DIR/metrics.json (history, best = paper protocol, final, and
selected = validation protocol when --validation_fraction > 0; seconds of
training, evaluation, compilation and data preparation; the provenance of
the run) and a checkpoint after every epoch (OUTPUT_DIR/checkpoint unless
--checkpoint_dir says otherwise), from which experiments/recommend.py
recommends.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import cli  # pylint: disable=g-import-not-at-top
from glocal_jax import data as gdata
from glocal_jax import experiment
from glocal_jax.training import NonFiniteError
from provenance import provenance
from reporting import write_json

cli.define_data_flags()
cli.define_model_flags()
flags.DEFINE_string("output_dir", None, "Where metrics.json (and, by "
                    "default, the checkpoint) go.")
flags.DEFINE_integer("seed", 0, "Seed of the parameter initialisation.")
flags.DEFINE_bool("pretrain_only", False,
                  "Pre-train only (SparseFC): no fine-tuning epochs.")
flags.DEFINE_float("validation_fraction", 0.0,
                   "Share of training ratings held out for model selection "
                   "(honest protocol); 0 disables it.")
flags.DEFINE_integer("validation_seed", 0, "Seed of the validation split.")
flags.DEFINE_string("checkpoint_dir", None,
                    "Write a checkpoint here after every epoch (default: "
                    "OUTPUT_DIR/checkpoint; 'none' writes none).")
flags.DEFINE_bool("resume", False,
                  "Continue from the checkpoint in --checkpoint_dir.")
flags.DEFINE_integer("stop_after", None,
                     "Stop after this many epochs (resume later).")
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


def checkpoint_dir() -> str | None:
  if FLAGS.checkpoint_dir == "none":
    return None
  return FLAGS.checkpoint_dir or os.path.join(FLAGS.output_dir, "checkpoint")


def main(argv):
  if len(argv) > 1:
    cli.fail(f"unexpected arguments {argv[1:]}")
  if not FLAGS.output_dir:
    cli.fail("--output_dir is required")
  if FLAGS.resume and checkpoint_dir() is None:
    cli.fail("--resume needs a checkpoint (--checkpoint_dir)")
  if FLAGS.stop_after is not None and FLAGS.stop_after <= 0:
    cli.fail(f"--stop_after must be positive, got {FLAGS.stop_after}")
  if not 0.0 <= FLAGS.validation_fraction < 1.0:
    cli.fail("--validation_fraction must be in [0, 1), got "
             f"{FLAGS.validation_fraction}")
  cli.check_output_dir(FLAGS.output_dir)
  if checkpoint_dir():
    cli.check_output_dir(checkpoint_dir())
  overrides = {"finetune_epochs": 0} if FLAGS.pretrain_only else {}
  config = cli.config_for(FLAGS.dataset, **overrides)
  tic = time.perf_counter()
  data = cli.load(FLAGS.dataset, FLAGS.data_dir,
                  **cli.split_options(FLAGS.dataset))
  if FLAGS.validation_fraction > 0:
    data = gdata.split_validation(data, FLAGS.validation_fraction,
                                  FLAGS.validation_seed)
  print(f"loaded {data.summary()} in {time.perf_counter() - tic:.1f}s")
  for note in data.notes:
    print(f"warning: {note}")
  print(f"config: {config}")
  print("compiling each phase's epoch before it first runs; the epoch lines "
        "show the compile time")
  try:
    result = experiment.fit(config, data, FLAGS.seed,
                            checkpoint_dir=checkpoint_dir(),
                            resume=FLAGS.resume, stop_after=FLAGS.stop_after,
                            mesh=cli.items_mesh(),
                            cold_fallback=FLAGS.cold_fallback)
  except NonFiniteError as e:
    kept = (f" The last good checkpoint is kept in {checkpoint_dir()}."
            if checkpoint_dir() else "")
    cli.fail(f"{e}{kept}")
  except KeyboardInterrupt:
    resume = (f"; the checkpoint of the last finished epoch is in "
              f"{checkpoint_dir()}: rerun with --resume to continue"
              if checkpoint_dir() else "")
    print(f"interrupted{resume}", file=sys.stderr)
    sys.exit(130)
  except ValueError as e:
    cli.fail(str(e))
  result.update(validation_fraction=FLAGS.validation_fraction,
                data_notes=list(data.notes), provenance=provenance())
  path = os.path.join(FLAGS.output_dir, "metrics.json")
  for where, value in write_json(path, result).items():
    print(f"warning: {where} was {value}; written as null")
  if "best" in result:
    print(f"best ({result['phase']}, paper protocol): {result['best']}")
    print(f"final: {result['final']}")
  if "selected" in result:
    print(f"selected on validation: {result['selected']}")
  print(f"{result['seconds']:.1f}s ({result['train_seconds']:.1f}s training, "
        f"{result['evaluation_seconds']:.1f}s evaluating, "
        f"{result['compile_seconds']:.1f}s compiling) on "
        f"{result['device']['kind']}; wrote {path}")
  if checkpoint_dir():
    print(f"checkpoint: {checkpoint_dir()} (python experiments/recommend.py "
          f"--checkpoint_dir={checkpoint_dir()} --user=ID)")


if __name__ == "__main__":
  app.run(main)
