"""Flags and helpers shared by the experiment scripts (absl)."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import Callable

from absl import flags

import glocal_jax as gj
from glocal_jax import data as gdata

FLAGS = flags.FLAGS


def define_model_flags() -> None:
  """Every SPEC hyper-parameter as a flag; unset means the dataset preset."""
  flags.DEFINE_integer("pretrain_epochs", None, "Pre-training epochs.")
  flags.DEFINE_integer("finetune_epochs", None, "Fine-tuning epochs.")
  flags.DEFINE_integer("pretrain_maxiter", None,
                       "L-BFGS-B iterations per pre-training epoch.")
  flags.DEFINE_integer("finetune_maxiter", None,
                       "L-BFGS-B iterations per fine-tuning epoch.")
  flags.DEFINE_float("lambda_2", None, "L2 penalty on the weights.")
  flags.DEFINE_float("lambda_s", None, "L2 penalty on the local kernels.")
  flags.DEFINE_float("dot_scale", None, "Scale of the weighted aggregation.")
  flags.DEFINE_list("hidden", None, "Hidden sizes, e.g. 500,500.")
  flags.DEFINE_integer("n_dim", None, "Local kernel embedding dimension.")
  flags.DEFINE_integer("kernel_size", None, "Global kernel size (odd).")
  flags.DEFINE_integer("conv_layers", None, "Stacked global convolutions.")
  flags.DEFINE_enum("aggregation", None, list(gj.kernels.AGGREGATIONS),
                    "Global kernel aggregation.")
  flags.DEFINE_enum("optimizer", "jaxopt", list(gj.optim.DRIVERS),
                    "L-BFGS-B driver.")
  flags.DEFINE_string("representation", "auto",
                      "How the loss is computed on the ratings: dense (the "
                      "whole items x users matrix), blocked (blocks of "
                      "items), sparse (work proportional to the ratings), "
                      "one per product (e.g. input=sparse:conv=dense:"
                      "output=sparse) or auto (chosen per product and "
                      "device, docs/scaling.md).")
  flags.DEFINE_integer("block_size", 0, "Items per block of blocked "
                       "products (0: from the device's memory).")
  flags.DEFINE_integer("chunk_size", 0, "Ratings per chunk of sparse "
                       "products (0: the device's default).")


def define_data_flags(multi: bool = False) -> None:
  """Dataset choice (one, or several with ``multi``) and synthetic shapes."""
  if multi:
    flags.DEFINE_list("datasets", ["ml-100k", "douban"],
                      f"Datasets, of {list(gdata.DATASETS)}.")
    flags.DEFINE_string("data_root", None,
                        "Folder with one sub-folder per dataset "
                        "(default: $GLOCAL_JAX_DATA or ~/.cache/glocal_jax).")
  else:
    flags.DEFINE_enum("dataset", "ml-100k", list(gdata.DATASETS), "Dataset.")
    flags.DEFINE_string("data_dir", None, "Folder with the dataset's files.")
  flags.DEFINE_bool("download", False, "Download missing dataset files.")
  flags.DEFINE_integer("synthetic_items", 1682, "Synthetic: items.")
  flags.DEFINE_integer("synthetic_users", 943, "Synthetic: users.")
  flags.DEFINE_float("synthetic_density", 0.063, "Synthetic: density.")
  flags.DEFINE_integer("synthetic_ratings", None, "Synthetic: number of "
                       "ratings (instead of --synthetic_density).")
  flags.DEFINE_float("synthetic_skew", 0.0, "Synthetic: Zipf-like popularity "
                     "exponent of items and users (0: uniform; 1.5: skew "
                     "like real rating data, see glocal_jax.data.synthetic).")
  flags.DEFINE_integer("synthetic_rank", 10, "Synthetic: rank.")
  flags.DEFINE_float("synthetic_test_fraction", 0.1,
                     "Synthetic: share of the ratings held out as test.")
  flags.DEFINE_string("preset", None,
                      "Hyper-parameter preset (default: the dataset's; "
                      "ml-100k's for synthetic).")


def fail(message: str) -> None:
  """Prints ``message`` to stderr and exits with status 2."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def config_for(dataset: str, **overrides) -> gj.GLocalKConfig:
  """The preset for ``dataset`` with the model flags that were set applied."""
  names = ["pretrain_epochs", "finetune_epochs", "pretrain_maxiter",
           "finetune_maxiter", "lambda_2", "lambda_s", "dot_scale", "n_dim",
           "kernel_size", "conv_layers", "aggregation", "optimizer",
           "representation", "block_size", "chunk_size"]
  changes = {n: FLAGS[n].value for n in names if FLAGS[n].value is not None}
  if FLAGS.hidden is not None:
    try:
      changes["hidden"] = tuple(int(h) for h in FLAGS.hidden)
    except ValueError:
      fail(f"--hidden must be comma-separated integers, got {FLAGS.hidden}")
  if FLAGS.finetune_epochs is not None and FLAGS.finetune_epochs <= 0:
    fail(f"--finetune_epochs must be positive, got {FLAGS.finetune_epochs} "
         "(use --pretrain_only for the local-kernel AE alone)")
  changes.update(overrides)
  name = FLAGS.preset or ("ml-100k" if dataset == "synthetic" else dataset)
  try:
    return gj.preset(name, **changes)
  except ValueError as e:
    fail(str(e))


def load(dataset: str, data_dir: str | None, skip_missing: bool = False,
         **options) -> gdata.RatingData | None:
  """Loads ``dataset`` (``options`` go to its loader), turning data errors
  into a clear exit; with ``skip_missing``, missing files print a message and
  give None instead."""
  try:
    if dataset == "synthetic":
      return gdata.synthetic(
          FLAGS.synthetic_items, FLAGS.synthetic_users,
          FLAGS.synthetic_density, FLAGS.synthetic_rank,
          FLAGS.synthetic_test_fraction,
          n_ratings=FLAGS.synthetic_ratings, item_skew=FLAGS.synthetic_skew,
          user_skew=FLAGS.synthetic_skew)
    return gdata.load_dataset(dataset, data_dir, FLAGS.download, **options)
  except gdata.MissingDataError as e:
    if not skip_missing:
      fail(str(e))
    print(f"skipping {dataset}: {e}")
  except (gdata.DataFormatError, ValueError) as e:
    fail(str(e))
  return None


def write_json(path: str, obj) -> None:
  """Writes ``obj`` as JSON atomically."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)


# --- Paper tables and figures: several datasets, seeds and protocols. ---

PROTOCOLS = ("paper", "validation")
MODELS = ("glocal-k", "sparsefc", "i-autorec")
# Mean predictors (glocal_jax.baselines): no training, nothing to select.
MEAN_BASELINES = {"global-mean": "global", "item-mean": "item",
                  "user-mean": "user"}
ALL_MODELS = MODELS + tuple(MEAN_BASELINES)


def define_sweep_flags() -> None:
  """Flags of the table and figure scripts."""
  define_data_flags(multi=True)
  define_model_flags()
  flags.DEFINE_integer("seeds", 5, "Seeds per row, trained as one vmapped "
                       "program (seeds 0..N-1).")
  flags.DEFINE_list("protocols", list(PROTOCOLS),
                    "paper: best fine-tuning epoch on test; validation: "
                    "epoch selected on a held-out share of the training "
                    "ratings, test reported there.")
  flags.DEFINE_float("validation_fraction", 0.05,
                     "Share of training ratings held out (validation "
                     "protocol).")
  flags.DEFINE_integer("validation_seed", 0, "Seed of the validation split.")
  flags.DEFINE_enum("seed_batching", "vmap", ["vmap", "map"],
                    "Seeds as one jax.vmap-ed program, or lax.map over them "
                    "inside one program (faster on a CPU; docs/optimizer.md).")
  flags.DEFINE_string("output_dir", None, "Where the JSON/CSV/PNG go.")


def check_sweep_flags(argv: list[str]) -> None:
  """Refuses stray arguments and out-of-range sweep flags."""
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}")
  if not FLAGS.output_dir:
    fail("--output_dir is required")
  if FLAGS.seeds <= 0:
    fail(f"--seeds must be positive, got {FLAGS.seeds}")
  for p in FLAGS.protocols:
    if p not in PROTOCOLS:
      fail(f"unknown protocol {p!r}; known: {list(PROTOCOLS)}")
  for d in FLAGS.datasets:
    if d not in gdata.DATASETS:
      fail(f"unknown dataset {d!r}; known: {list(gdata.DATASETS)}")
  if not 0.0 < FLAGS.validation_fraction < 1.0:
    fail("--validation_fraction must be in (0, 1), got "
         f"{FLAGS.validation_fraction}")
  if FLAGS.optimizer == "scipy":
    fail("the table scripts train seeds as one vmapped program: use a jaxopt "
         "--optimizer")


def check_models(models: list[str]) -> None:
  """Refuses model names that are neither trained models nor baselines."""
  for m in models:
    if m not in ALL_MODELS:
      fail(f"unknown model {m!r}; known: {list(ALL_MODELS)}")


def number_list(flag: str, cast, valid, requirement: str) -> list:
  """``--flag``'s comma-separated values cast and checked, or a clear exit."""
  try:
    values = [cast(v) for v in FLAGS[flag].value]
  except ValueError:
    fail(f"--{flag} must be {cast.__name__} values, got {FLAGS[flag].value}")
  if not all(valid(v) for v in values):
    fail(f"--{flag} values must be {requirement}, got {values}")
  return values


def sweep_datasets():
  """Yields ``(name, RatingData)``; a dataset whose files are missing is
  skipped with a message (ML-1M is not always at hand)."""
  for name in FLAGS.datasets:
    data_dir = os.path.join(FLAGS.data_root, name) if FLAGS.data_root else None
    data = load(name, data_dir, skip_missing=True)
    if data is not None:
      yield name, data


def model_config(dataset: str, model: str, **overrides) -> "gj.GLocalKConfig":
  """GLocal-K, or a baseline trained for as many L-BFGS-B epochs.

  ``sparsefc``: the local-kernel AE alone (pre-training only) for
  ``pretrain_epochs + finetune_epochs`` epochs; ``i-autorec``: the same with
  plain dense layers and one hidden layer of 500 (Sedhain et al. 2015).
  """
  config = config_for(dataset, **overrides)
  epochs = config.pretrain_epochs + config.finetune_epochs
  if model == "sparsefc":
    return config.replace(pretrain_epochs=epochs, finetune_epochs=0)
  if model == "i-autorec":
    return config.replace(pretrain_epochs=epochs, finetune_epochs=0,
                          local_kernel=False, hidden=(500,))
  return config


def batched_epoch_fns(config: "gj.GLocalKConfig") -> dict:
  """Compiled epochs over ``--seeds`` seeds, shared by every row whose
  config differs only in the number of epochs."""
  return _batched_epoch_fns(config.replace(pretrain_epochs=1,
                                           finetune_epochs=1))


@functools.lru_cache(maxsize=None)
def _batched_epoch_fns(config: "gj.GLocalKConfig") -> dict:
  from glocal_jax import training  # pylint: disable=g-import-not-at-top
  return training.make_epoch_fns(config, batched=True,
                                 seed_batching=FLAGS.seed_batching)


def protocol_data(data: gdata.RatingData, protocol: str) -> gdata.RatingData:
  """``data`` as trained on under ``protocol`` (validation: a seeded share
  of the training ratings held out)."""
  if protocol == "validation":
    return gdata.split_validation(data, FLAGS.validation_fraction,
                                  FLAGS.validation_seed)
  return data


def log_line(line: str) -> None:
  print("  " + line)


METRICS = ("rmse", "mae", "ndcg")


def summary_row(dataset: str, fields: dict, protocol: str, mean: dict,
                std: dict, ensemble: dict, per_seed: list[dict], *,
                seed_batching, seconds: float, device: str,
                config: dict) -> dict:
  """One JSON row of a table; ``mean``, ``std``, ``ensemble`` and each of
  ``per_seed`` map each of METRICS to its value."""
  row = {"dataset": dataset, **fields, "protocol": protocol,
         "seeds": len(per_seed), "seed_batching": seed_batching}
  for k in METRICS:
    row.update({f"{k}_mean": mean[k], f"{k}_std": std[k]})
  row.update({f"ensemble_{k}": ensemble[k] for k in METRICS})
  row.update(seconds=round(seconds, 1), device=device, config=config,
             per_seed_rmse=[s["rmse"] for s in per_seed])
  return row


def run_row(data: gdata.RatingData, config: "gj.GLocalKConfig",
            protocol: str, snapshot=None, **fields) -> dict:
  """Trains ``--seeds`` seeds on ``data`` and summarises one table row.

  ``snapshot``: optional ``(stacked params, seconds)`` after
  ``config.pretrain_epochs`` pre-training epochs on
  ``protocol_data(data, protocol)`` to fine-tune from; its seconds count in
  the row's.
  """
  from glocal_jax import experiment  # pylint: disable=g-import-not-at-top
  data = protocol_data(data, protocol)
  seeds = list(range(FLAGS.seeds))
  print(f"== {fields} protocol={protocol}: {data.summary()}")
  params, seconds_before, start = None, 0.0, ("pretrain", 0)
  if snapshot is not None:
    params, seconds_before = snapshot
    start = ("pretrain", config.pretrain_epochs)
  result = experiment.fit_seeds(config, data, seeds, log=log_line,
                                epoch_fns=batched_epoch_fns(config),
                                params=params, start=start)
  result["seconds"] += seconds_before
  block = "best" if protocol == "paper" else "selected"
  row = summary_row(data.name, fields, protocol, result["mean"][block],
                    result["std"][block], result["ensemble"][block],
                    [s[block] for s in result["per_seed"]],
                    seed_batching=FLAGS.seed_batching,
                    seconds=result["seconds"],
                    device=result["device"]["kind"], config=result["config"])
  print(f"   -> RMSE {row['rmse_mean']:.4f} +- {row['rmse_std']:.4f}, "
        f"ensemble {row['ensemble_rmse']:.4f}, {row['seconds']}s")
  return row


def run_model_row(data: gdata.RatingData, dataset: str, model: str,
                  protocol: str, **fields) -> dict:
  """One row of ``model`` on ``data``: ``--seeds`` trained seeds
  (:func:`run_row`), or a mean predictor fitted to the protocol's training
  ratings (one deterministic fit: ``seeds`` 1, std 0)."""
  if model not in MEAN_BASELINES:
    return run_row(data, model_config(dataset, model), protocol, model=model,
                   **fields)
  from glocal_jax import experiment  # pylint: disable=g-import-not-at-top
  data = protocol_data(data, protocol)
  start = time.perf_counter()
  predictions = gj.mean_predictions(data.train, data.test.items,
                                    data.test.users, MEAN_BASELINES[model])
  result = {k: float(v) for k, v in gj.evaluate(predictions,
                                                data.test).items()}
  seconds = time.perf_counter() - start
  row = summary_row(data.name, {"model": model, **fields}, protocol, result,
                    dict.fromkeys(METRICS, 0.0), result, [result],
                    seed_batching=None, seconds=seconds,
                    device=experiment.device_info()["kind"],
                    config={"predictor": MEAN_BASELINES[model]})
  print(f"== {model} {fields} protocol={protocol}: RMSE {result['rmse']:.4f}")
  return row


def write_rows(name: str, rows: list[dict]) -> None:
  """Writes OUTPUT_DIR/name.json and name.csv (scalar columns)."""
  write_json(os.path.join(FLAGS.output_dir, f"{name}.json"), rows)
  if not rows:
    return
  columns = [k for k in rows[0] if not isinstance(rows[0][k], (dict, list))]
  with open(os.path.join(FLAGS.output_dir, f"{name}.csv"), "w") as f:
    f.write(",".join(columns) + "\n")
    for row in rows:
      f.write(",".join(str(row.get(c, "")) for c in columns) + "\n")
  print(f"wrote {FLAGS.output_dir}/{name}.json and .csv")


def plot_rows(path: str, rows: list[dict], x: str,
              label: Callable[[dict], str]) -> bool:
  """Test RMSE (``rmse_mean``, with ``rmse_std`` as error bars) against
  ``row[x]`` as a PNG at ``path``: one panel per dataset, one line per
  ``label(row)``. False (and a message) when matplotlib is not installed."""
  panels = {}
  for row in rows:
    xs, ys, stds = panels.setdefault(row["dataset"], {}).setdefault(
        label(row), ([], [], []))
    xs.append(row[x])
    ys.append(row["rmse_mean"])
    stds.append(row.get("rmse_std", 0.0))
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError:
    print("matplotlib is not installed (pip install -e '.[plot]'); no PNG.")
    return False
  n_lines = max(len(lines) for lines in panels.values())
  fig, axes = plt.subplots(1, len(panels),
                           figsize=(5.5 * len(panels), 3.6 + 0.18 * n_lines),
                           squeeze=False)
  for ax, (title, lines) in zip(axes[0], panels.items()):
    for line, (xs, ys, stds) in lines.items():
      ax.errorbar(xs, ys, yerr=stds, marker="o", capsize=3, label=line)
    ax.set_title(title)
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel("test RMSE")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  print(f"wrote {path}")
  return True
