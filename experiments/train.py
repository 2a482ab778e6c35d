r"""Trains GLocal-K on one dataset with the paper's presets.

  python experiments/train.py --dataset=ml-100k \
      --data_dir=../shared/data/ml-100k --output_dir=/tmp/run
  python experiments/train.py --dataset=file --train_file=ratings.csv \
      --output_dir=/tmp/mine

Writes OUTPUT_DIR/metrics.json (history, best = paper protocol, final, and
selected = validation protocol when --validation_fraction > 0; seconds of
training, evaluation, compilation and data preparation; the provenance of
the run), OUTPUT_DIR/history.csv (one row per epoch; with matplotlib also
history.png, the training curves) and a checkpoint after every epoch
(OUTPUT_DIR/checkpoint unless --checkpoint_dir says otherwise), from which
experiments/recommend.py and glocal_jax.load_model predict. A folder that
another run is writing into, or that holds a run, is refused (--resume,
--overwrite).

Several processes (one per host or per accelerator; on one machine for
tests): start each with the same flags plus --coordinator_address=HOST:PORT
--num_processes=N --process_id=I; --devices counts the devices of all of
them. Every process reads the data; process 0 writes the results and the
checkpoints; --resume reads them in every process (docs/scaling.md).
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from glocal_jax import checkpoint
from glocal_jax import data as gdata
from glocal_jax import runs
from glocal_jax.training import NonFiniteError

import cli  # pylint: disable=g-import-not-at-top
from provenance import provenance
import reporting
from reporting import write_json

cli.define_data_flags()
cli.define_model_flags()
cli.define_distributed_flags()
flags.DEFINE_string("output_dir", None, "Where metrics.json (and, by "
                    "default, the checkpoint) go.")
flags.DEFINE_integer("seed", 0, "Seed of the parameter initialisation.")
flags.DEFINE_bool("pretrain_only", False,
                  "Pre-train only (SparseFC): no fine-tuning epochs.")
flags.DEFINE_float("validation_fraction", 0.05,
                   "Share of training ratings held out to select the epoch "
                   "(the honest protocol, across both phases; the test set "
                   "is only reported); 0 trains on every training rating "
                   "and keeps the last epoch (the paper's protocol, best "
                   "epoch on test, is still reported).")
flags.DEFINE_integer("validation_seed", 0, "Seed of the validation split.")
flags.DEFINE_string("checkpoint_dir", None,
                    "Write a checkpoint here after every epoch (default: "
                    "OUTPUT_DIR/checkpoint; 'none' writes none).")
flags.DEFINE_bool("resume", False,
                  "Continue from the checkpoint in --checkpoint_dir.")
flags.DEFINE_integer("stop_after", None,
                     "Stop after this many epochs (resume later).")
flags.DEFINE_string("items_file", None, "Item names (a file of item id and "
                    "name per line), saved with the checkpoint for "
                    "recommend.py; ML-100K's u.item and ML-1M's movies.dat "
                    "are read from the data folder without it.")
flags.DEFINE_bool("overwrite", False, "Replace the run already in "
                  "--output_dir (without it, such a folder is refused: "
                  "--resume continues that run, or extends a finished one "
                  "by more epochs).")
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


def checkpoint_dir() -> str | None:
  if FLAGS.checkpoint_dir == "none":
    return None
  return FLAGS.checkpoint_dir or os.path.join(FLAGS.output_dir, "checkpoint")


def check_existing(output_dir: str, ckpt_dir: str | None) -> None:
  """Exits when ``output_dir`` holds a run that this one would overwrite
  (unless --resume or --overwrite)."""
  if FLAGS.resume or FLAGS.overwrite:
    return
  finished = os.path.exists(os.path.join(output_dir, "metrics.json"))
  started = ckpt_dir is not None and checkpoint.exists(ckpt_dir)
  if finished or started:
    what = "a finished run" if finished else "an unfinished run's checkpoint"
    cli.fail(f"{output_dir} holds {what}: --resume continues it (also with "
             "more epochs), --overwrite replaces it, or use another "
             "--output_dir")


def result_table(result: dict) -> list[str]:
  """The end of a run in a few lines, each of one epoch: the honest
  protocol first when there is a validation split, then the paper's (the
  epoch of best test RMSE) and the last epoch."""
  by_epoch = {(h["phase"], h["epoch"]): h["metrics"]
              for h in result["history"]}
  valid = {at: m.get("valid_rmse") for at, m in by_epoch.items()}
  test = lambda at: {k: by_epoch[at].get(f"test_{k}")
                     for k in ("rmse", "mae", "ndcg")}
  rows = []
  if "selected" in result:
    rows.append(("selected on validation", (result["selected"]["phase"],
                                            result["selected"]["epoch"])))
  if "best" in result and result["best"]["rmse"] is not None:
    rows.append(("best on test (paper)",
                 (result["phase"], result["best"]["rmse_epoch"])))
  if "final" in result:
    rows.append(("last epoch", (result["phase"], result["final"]["epoch"])))
  rows = [(name, at, test(at)) for name, at in rows]
  show = lambda v: "n/a" if v is None or v != v else f"{v:.4f}"
  lines = [f"{'':24s} {'epoch':13s} {'test RMSE':>9s} {'MAE':>7s} "
           f"{'NDCG':>7s} {'valid RMSE':>10s}"]
  lines += [f"{name:24s} {at[0] + ' ' + str(at[1]):13s} "
            f"{show(m['rmse']):>9s} {show(m['mae']):>7s} "
            f"{show(m['ndcg']):>7s} {show(valid.get(at)):>10s}"
            for name, at, m in rows]
  return lines


def write_curves(output_dir: str, history: list[dict]) -> list[str]:
  """OUTPUT_DIR/history.csv (one row per epoch: phase, epoch, loss and
  every metric) and, with matplotlib, history.png; the paths written."""
  names = sorted({k for h in history for k in h["metrics"]})
  rows = [{"phase": h["phase"], "epoch": h["epoch"], "loss": h["loss"],
           **{k: h["metrics"].get(k) for k in names}} for h in history]
  paths = [reporting.write_csv(os.path.join(output_dir, "history.csv"),
                               rows)]
  plt = reporting.pyplot()
  if plt is not None and history:
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7, 6))
    step = range(1, len(history) + 1)
    top.plot(step, [h["loss"] for h in history])
    top.set_ylabel("training loss")
    top.set_yscale("log")
    for split in ("test", "valid"):
      if f"{split}_rmse" in names:
        bottom.plot(step, [h["metrics"][f"{split}_rmse"] for h in history],
                    label=f"{split} RMSE")
    pretrain = sum(h["phase"] == "pretrain" for h in history)
    for ax in (top, bottom):
      if 0 < pretrain < len(history):
        ax.axvline(pretrain + 0.5, color="gray", linestyle=":")
    bottom.set_xlabel("epoch (pre-training, then fine-tuning)")
    bottom.legend()
    fig.tight_layout()
    path = os.path.join(output_dir, "history.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
  return paths


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
  cli.init_distributed()
  # A scheduler's or timeout's SIGTERM stops the run as Ctrl-C does, at
  # whatever step it is (loading, compiling, training): what finished is
  # written, the lock released (leaving its block), resuming said.
  previous = signal.signal(signal.SIGTERM, _terminated)
  try:
    if not cli.is_writer():  # process 0 writes; the others only read
      check_existing(FLAGS.output_dir, checkpoint_dir())
      run()
      return
    cli.check_output_dir(FLAGS.output_dir)
    if checkpoint_dir():
      cli.check_output_dir(checkpoint_dir())
    with cli.output_lock(FLAGS.output_dir):
      # Under the lock, so that no other run can finish in between.
      check_existing(FLAGS.output_dir, checkpoint_dir())
      run()
  except KeyboardInterrupt as e:
    stopped(isinstance(e, Terminated))
  finally:
    signal.signal(signal.SIGTERM, previous)


def stopped(terminated: bool) -> None:
  """Says how a run stopped by SIGINT or SIGTERM can go on, and exits."""
  if checkpoint_dir() and checkpoint.exists(checkpoint_dir()):
    said = (f"; the checkpoint of the last finished epoch is in "
            f"{checkpoint_dir()}: rerun with --resume to continue")
  else:
    said = ("; no epoch had finished, so there is no checkpoint to "
            "resume from" + ("" if checkpoint_dir() else
                             " (--checkpoint_dir=none)"))
  print(("terminated (SIGTERM)" if terminated else "interrupted") + said,
        file=sys.stderr)
  sys.exit(143 if terminated else 130)


class Terminated(KeyboardInterrupt):
  """SIGTERM, raised where the run is, as SIGINT raises KeyboardInterrupt."""


def _terminated(signum, frame):
  del signum, frame
  raise Terminated()


def run():
  """The run, once the output folder is held."""
  overrides = {"finetune_epochs": 0} if FLAGS.pretrain_only else {}
  config = cli.config_for(FLAGS.dataset, **overrides)
  tic = time.perf_counter()
  data = cli.load(FLAGS.dataset, FLAGS.data_dir,
                  **cli.split_options(FLAGS.dataset))
  if FLAGS.items_file:
    try:
      data = gdata.with_titles(data, FLAGS.items_file)
    except (OSError, ValueError) as e:
      cli.fail(str(e))
  if FLAGS.validation_fraction > 0:
    data = gdata.split_validation(data, FLAGS.validation_fraction,
                                  FLAGS.validation_seed)
  if cli.is_writer():
    print(f"loaded {data.summary()} in {time.perf_counter() - tic:.1f}s")
    for note in data.notes:
      print(f"warning: {note}")
    print(f"model: {config.architecture(*data.shape)}")
    print(f"config: {config}")
    print("compiling each phase's epoch before it first runs; the epoch "
          "lines show the compile time")
  try:
    result = runs.evaluated_run(
        config, data, FLAGS.seed, checkpoint_dir=checkpoint_dir(),
        resume=FLAGS.resume, stop_after=FLAGS.stop_after,
        mesh=cli.items_mesh(), cold_fallback=FLAGS.cold_fallback).to_dict()
  except NonFiniteError as e:
    kept = checkpoint_dir() and checkpoint.exists(checkpoint_dir())
    cli.fail(f"{e} " + (f"The last good checkpoint is kept in "
                        f"{checkpoint_dir()}." if kept else
                        "No epoch finished, so no checkpoint was written."))
  except ValueError as e:
    cli.fail(str(e))
  if cli.is_writer():
    write_results(result, data)


def write_results(result: dict, data: gdata.RatingData) -> None:
  """metrics.json, the curves and the closing lines of a finished run."""
  result.update(validation_fraction=FLAGS.validation_fraction,
                data_notes=list(data.notes), provenance=provenance())
  path = os.path.join(FLAGS.output_dir, "metrics.json")
  nulls = write_json(path, result)
  if data.test.count() == 0:
    print("no test ratings (--test_fraction=0): every test metric is "
          "undefined (null in metrics.json); the epoch is selected on "
          "validation" if data.valid is not None else "no test ratings "
          "(--test_fraction=0) and no validation split: nothing is "
          "evaluated; --validation_fraction selects an epoch")
  elif nulls:
    shown = ", ".join(f"{k} ({v})" for k, v in list(nulls.items())[:3])
    print(f"warning: {len(nulls)} value(s) written as null: {shown}"
          + (", ..." if len(nulls) > 3 else ""))
  curves = write_curves(FLAGS.output_dir, result["history"])
  print("\n".join(result_table(result)))
  print(f"{result['seconds']:.1f}s ({result['train_seconds']:.1f}s training, "
        f"{result['evaluation_seconds']:.1f}s evaluating, "
        f"{result['compile_seconds']:.1f}s compiling) on "
        f"{result['device']['kind']}; wrote {path}, {', '.join(curves)}")
  if checkpoint_dir():
    print(f"checkpoint: {checkpoint_dir()} (python experiments/recommend.py "
          f"--checkpoint_dir={checkpoint_dir()} --user=ID)")


if __name__ == "__main__":
  app.run(main)
