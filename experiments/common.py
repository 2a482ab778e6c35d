"""Flags and helpers shared by the experiment scripts (absl)."""

from __future__ import annotations

import json
import os
import sys

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
  flags.DEFINE_integer("synthetic_rank", 10, "Synthetic: rank.")
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
           "kernel_size", "conv_layers", "aggregation", "optimizer"]
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


def load(dataset: str, data_dir: str | None) -> gdata.RatingData:
  """Loads ``dataset``, turning data errors into a clear exit."""
  try:
    if dataset == "synthetic":
      return gdata.synthetic(FLAGS.synthetic_items, FLAGS.synthetic_users,
                             FLAGS.synthetic_density, FLAGS.synthetic_rank)
    return gdata.load_dataset(dataset, data_dir, FLAGS.download)
  except (gdata.MissingDataError, gdata.DataFormatError, ValueError) as e:
    fail(str(e))


def write_json(path: str, obj) -> None:
  """Writes ``obj`` as JSON atomically."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)
