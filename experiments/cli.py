"""Flags of the experiment scripts, and turning them into configs and data.

Each script defines the flags it needs through these functions and adopts
this module's flags as its own (``flags.adopt_module_key_flags(cli)``), so
``--help`` lists them. Anything a user can get wrong ends in :func:`fail`:
one line on stderr and exit status 2, before any long work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
import tempfile

from absl import flags
import jax

import glocal_jax as gj
from glocal_jax import data as gdata
from glocal_jax.data.reading import cache_root

FLAGS = flags.FLAGS
DELIMITERS = {"auto": None, "comma": ",", "tab": "\t", "colons": "::",
              "semicolon": ";", "whitespace": " "}

# JAX looks for a TPU on every start and logs, at INFO, that it found none;
# the scripts say which device they use themselves.
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)

# Model flags whose default is the dataset's preset: name -> (type, help).
PRESET_FLAGS = {
    "pretrain_epochs": (int, "Pre-training epochs."),
    "finetune_epochs": (int, "Fine-tuning epochs."),
    "pretrain_maxiter": (int, "L-BFGS-B iterations per pre-training epoch."),
    "finetune_maxiter": (int, "L-BFGS-B iterations per fine-tuning epoch."),
    "lambda_2": (float, "L2 penalty on the weights."),
    "lambda_s": (float, "L2 penalty on the local kernels."),
    "dot_scale": (float, "Scale of the weighted aggregation."),
    "n_dim": (int, "Local kernel embedding dimension."),
    "kernel_size": (int, "Global kernel size (odd)."),
    "conv_layers": (int, "Stacked global convolutions."),
}


# Datasets without a preset of their own train with the nearest one.
DEFAULT_PRESET = {"synthetic": "ml-100k", "file": "ml-100k",
                  "ml-10m": "ml-1m", "ml-20m": "ml-1m", "ml-25m": "ml-1m",
                  "netflix": "ml-1m"}


def default_cache_dir() -> str:
  """JAX's compilation cache: ``xla`` under the cache root
  (:func:`glocal_jax.data.reading.cache_root`: ``$GLOCAL_JAX_CACHE``, else
  ``$XDG_CACHE_HOME/glocal_jax``, else ``~/.cache/glocal_jax``)."""
  return os.path.join(cache_root(), "xla")


def use_compilation_cache() -> None:
  """Points JAX's persistent compilation cache at ``--compilation_cache``
  (before anything is compiled), caching every program."""
  if FLAGS.compilation_cache.lower() == "none":
    return
  try:
    os.makedirs(FLAGS.compilation_cache, exist_ok=True)
  except OSError as e:
    print(f"warning: no compilation cache ({e}); compiling from scratch")
    return
  jax.config.update("jax_compilation_cache_dir", FLAGS.compilation_cache)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def fail(message: str) -> None:
  """Prints ``message`` to stderr and exits with status 2."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def _preset_help(text: str, field: str) -> str:
  values = ", ".join(f"{name} {getattr(config, field)}"
                     for name, config in gj.PRESETS.items())
  return f"{text} Default: the dataset's preset ({values})."


def define_model_flags() -> None:
  """Every hyper-parameter of docs/model.md as a flag; unset means the dataset preset."""
  for name, (kind, text) in PRESET_FLAGS.items():
    define = flags.DEFINE_integer if kind is int else flags.DEFINE_float
    define(name, None, _preset_help(text, name))
  flags.DEFINE_list("hidden", None, _preset_help(
      "Hidden layer sizes, a comma-separated list: 500,500 is two layers "
      "of 500, 8 is one layer of 8.", "hidden"))
  flags.DEFINE_enum("aggregation", None, list(gj.kernels.AGGREGATIONS),
                    _preset_help("Global kernel aggregation.", "aggregation"))
  flags.DEFINE_enum("orientation", None, list(gj.config.ORIENTATIONS),
                    "items: the paper's item-based autoencoder (each item's "
                    "ratings are a sample); users: the same model on the "
                    "transposed matrix. Default: the preset's (items).")
  flags.DEFINE_enum("optimizer", gj.GLocalKConfig.optimizer,
                    list(gj.optim.DRIVERS), "L-BFGS-B driver.")
  flags.DEFINE_enum("first_step", None, list(gj.optim.FIRST_STEPS),
                    "First step of each epoch after the first of a phase: "
                    "carried (the previous epoch's last curvature scale; "
                    "the default for the JAX drivers) or unit (a fresh "
                    "L-BFGS-B run's unit-length step, as the authors' code; "
                    "the default and only choice for scipy). See "
                    "docs/optimizer.md.")
  flags.DEFINE_string("representation", "auto",
                      "How the loss is computed on the ratings: dense (the "
                      "whole items x users matrix), blocked (blocks of "
                      "items), sparse (work proportional to the ratings), "
                      "one per product (e.g. input=sparse:conv=dense:"
                      "output=sparse) or auto (chosen per product and "
                      "device, docs/scaling.md).")
  flags.DEFINE_string("compilation_cache", default_cache_dir(),
                      "JAX's persistent compilation cache: compiled programs "
                      "are kept here and reused by later runs ('none' turns "
                      "it off).")
  flags.DEFINE_integer("devices", None, "Devices to use, over all processes "
                       "(default: all JAX sees; 1: one device). train.py and "
                       "benchmark.py split the items over them; the table "
                       "and figure scripts, and benchmark.py with --seeds > "
                       "1, spread the seeds over them, tune.py the "
                       "configurations.")
  flags.DEFINE_integer("block_size", 0, "Items per block of blocked "
                       "products (0: from the device's memory).")
  flags.DEFINE_integer("chunk_size", 0, "Ratings per chunk of sparse "
                       "products (0: the device's default).")
  flags.DEFINE_string("config_json", None,
                      "A config file (e.g. tune.py's DIR/config.json) to "
                      "start from instead of the preset; the model flags "
                      "that are set still apply.")
  flags.DEFINE_string("preset", None,
                      "Hyper-parameter preset, of "
                      f"{list(gj.PRESETS)} (default: the dataset's; "
                      + ", ".join(f"{k}: {v}'s" for k, v in
                                  DEFAULT_PRESET.items()) + ").")


def define_data_flags(multi: bool = False) -> None:
  """Dataset choice (one, or several with ``multi``) and synthetic shapes."""
  # A flat list of flag definitions, long because the data flags are many;
  # grouping them into helpers would only scatter the list.
  if multi:
    flags.DEFINE_list("datasets", ["ml-100k", "douban"],
                      f"Datasets, of {list(gdata.DATASETS)}.")
    flags.DEFINE_string("data_root", None,
                        "Folder with one sub-folder per dataset "
                        "(default: $GLOCAL_JAX_DATA or ~/.cache/glocal_jax).")
  else:
    flags.DEFINE_enum("dataset", "ml-100k", list(gdata.DATASETS), "Dataset "
                      "(file: your own, see --train_file).")
    flags.DEFINE_string("data_dir", None, "Folder with the dataset's files.")
    flags.DEFINE_string("train_file", None, "--dataset=file: the ratings "
                        "file (all ratings, without --test_file).")
    flags.DEFINE_string("test_file", None, "--dataset=file: held-out "
                        "ratings (default: split --train_file).")
    flags.DEFINE_float("test_fraction", 0.1, "Test share of the seeded split "
                       "(ML-1M, ML-10M, ML-20M, ML-25M, and --dataset=file "
                       "without --test_file).")
    flags.DEFINE_integer("split_seed", 1234, "Seed of that split (the "
                         "reference's: 1234).")
    flags.DEFINE_enum("delimiter", "auto", list(DELIMITERS),
                      "--dataset=file: the field delimiter.")
    flags.DEFINE_enum("header", "auto", ["auto", "yes", "no"],
                      "--dataset=file: whether the first line names the "
                      "columns.")
    flags.DEFINE_list("columns", ["0", "1", "2"], "--dataset=file: 0-based "
                      "fields of the user id, the item id and the rating.")
    flags.DEFINE_enum("duplicates", "last", ["last", "error"],
                      "--dataset=file: of a pair rated more than once, the "
                      "last rating is kept (counted in a warning), or the "
                      "file is refused.")
    flags.DEFINE_enum("cold_users", "keep", list(gdata.COLD_USERS),
                      "--dataset=file: test ratings by users without a "
                      "training rating are kept (the full test set; "
                      "predicted by the fallback, see --cold_fallback), or "
                      "dropped.")
    flags.DEFINE_enum("ids", "text", list(gdata.IDS),
                      "--dataset=file: ids are text (007 and 7 are two "
                      "users), or numbers (each a non-negative integer, "
                      "sorted numerically).")
    flags.DEFINE_enum("overlap", "error", list(gdata.OVERLAPS),
                      "--dataset=file with --test_file: a (user, item) pair "
                      "in both files is an error, or dropped from the test "
                      "ratings (counted).")
    flags.DEFINE_enum("fold", "1", list(gdata.FOLDS), "--dataset=ml-100k: "
                      "the split: u1 (the paper's) .. u5 (the release's "
                      "5-fold cross-validation), ua/ub (10 test ratings per "
                      "user), or all (u.data split by --test_fraction and "
                      "--split_seed).")
  flags.DEFINE_list("rating_scale", None, "low,high[,step] of the ratings: "
                    "what the loader checks them against, the range "
                    "predictions are clipped to and the one mapped onto the "
                    "model's 1..5 (default: the dataset's; for "
                    "--dataset=file, from the data).")
  flags.DEFINE_string("cache_dir", None, "Cache of parsed rating files "
                      "(default: $GLOCAL_JAX_CACHE/parsed, else "
                      "$XDG_CACHE_HOME/glocal_jax/parsed, else "
                      "~/.cache/glocal_jax/parsed; 'none': no cache). Never "
                      "the data's folder.")
  flags.DEFINE_bool("cold_fallback", True, "Predict the test ratings of "
                    "users or items without a training rating by their "
                    "item's (else user's, else the global) training mean "
                    "(glocal_jax.baselines.fallback_predictions); false: by "
                    "the model, as the authors' code.")
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


def config_for(dataset: str, **overrides) -> gj.GLocalKConfig:
  """The preset for ``dataset`` with the model flags that were set applied
  (and the compilation cache set up, as every script reads its config
  before compiling)."""
  use_compilation_cache()
  names = [*PRESET_FLAGS, "aggregation", "orientation", "optimizer",
           "first_step", "representation", "block_size", "chunk_size"]
  changes = {n: FLAGS[n].value for n in names if FLAGS[n].value is not None}
  if FLAGS.first_step is None and FLAGS.optimizer == "scipy":
    changes["first_step"] = "unit"
  if FLAGS.hidden is not None:
    try:
      changes["hidden"] = tuple(int(h) for h in FLAGS.hidden)
    except ValueError:
      fail(f"--hidden must be comma-separated integers, got {FLAGS.hidden}")
  if FLAGS.finetune_epochs is not None and FLAGS.finetune_epochs <= 0:
    fail(f"--finetune_epochs must be positive, got {FLAGS.finetune_epochs} "
         "(use --pretrain_only for the local-kernel AE alone)")
  changes.update(overrides)
  name = FLAGS.preset or DEFAULT_PRESET.get(dataset, dataset)
  try:
    if FLAGS.config_json:
      return config_file(FLAGS.config_json).replace(**changes)
    return gj.preset(name, **changes)
  except ValueError as e:
    fail(str(e))


def config_file(path: str) -> gj.GLocalKConfig:
  """The config saved in ``path`` (JSON of ``GLocalKConfig.to_dict()``),
  or a clear exit."""
  try:
    with open(path) as f:
      return gj.GLocalKConfig(**json.load(f))
  except (OSError, ValueError, TypeError, AttributeError) as e:
    fail(f"--config_json={path}: not a config file ({e})")


def rating_scale() -> gdata.RatingScale | None:
  """``--rating_scale``, or None."""
  if not FLAGS.rating_scale:
    return None
  try:
    values = [float(v) for v in FLAGS.rating_scale]
    if len(values) not in (2, 3):
      raise ValueError("needs 2 or 3 values")
    return gdata.RatingScale(*values)
  except ValueError as e:
    fail(f"--rating_scale must be low,high[,step] with 0 < low <= high: "
         f"{FLAGS.rating_scale} ({e})")


def file_options() -> dict:
  """:func:`glocal_jax.data.load_ratings_file`'s options from the flags."""
  if not FLAGS.train_file:
    fail("--dataset=file needs --train_file")
  try:
    columns = [int(c) for c in FLAGS.columns]
  except ValueError:
    columns = []
  if len(columns) != 3 or min(columns) < 0 or len(set(columns)) != 3:
    fail(f"--columns must be three different field numbers >= 0, got "
         f"{FLAGS.columns}")
  return {"train_file": FLAGS.train_file, "test_file": FLAGS.test_file,
          "test_fraction": FLAGS.test_fraction, "seed": FLAGS.split_seed,
          "delimiter": DELIMITERS[FLAGS.delimiter],
          "header": {"auto": None, "yes": True, "no": False}[FLAGS.header],
          "columns": columns, "scale": rating_scale(),
          "duplicates": FLAGS.duplicates, "cold_users": FLAGS.cold_users,
          "overlap": FLAGS.overlap, "ids": FLAGS.ids}


def load(dataset: str, data_dir: str | None, skip_missing: bool = False,
         **options) -> gdata.RatingData | None:
  """Loads ``dataset`` (``options`` go to its loader), turning data errors
  into a clear exit; with ``skip_missing``, missing files print a message and
  give None instead. ``--rating_scale`` replaces the dataset's scale before
  the loader checks the ratings against it."""
  scale = rating_scale()
  try:
    if dataset == "synthetic":
      data = gdata.synthetic(
          FLAGS.synthetic_items, FLAGS.synthetic_users,
          FLAGS.synthetic_density, FLAGS.synthetic_rank,
          FLAGS.synthetic_test_fraction,
          n_ratings=FLAGS.synthetic_ratings, item_skew=FLAGS.synthetic_skew,
          user_skew=FLAGS.synthetic_skew)
      if scale is not None:
        data = gdata.validate(dataclasses.replace(data, scale=scale), scale)
    elif dataset == "file":
      data = gdata.load_ratings_file(**file_options(), **options,
                                     cache_dir=FLAGS.cache_dir)
    else:
      if scale is not None:
        options["scale"] = scale
      if dataset not in gdata.MONTI_DATASETS:
        options["cache_dir"] = FLAGS.cache_dir
      data = gdata.load_dataset(dataset, data_dir, FLAGS.download, **options)
  except gdata.MissingDataError as e:
    if not skip_missing:
      fail(str(e))
    print(f"skipping {dataset}: {e}")
    return None
  except (gdata.DataFormatError, ValueError) as e:
    fail(str(e))
  return data


def split_options(dataset: str) -> dict:
  """The split flags of the datasets that take them (the seeded split;
  ML-100K's folds)."""
  seeded = {"test_fraction": FLAGS.test_fraction, "seed": FLAGS.split_seed}
  if dataset in ("ml-1m", "ml-10m", "ml-20m", "ml-25m"):
    return seeded
  if dataset == "ml-100k" and "fold" in FLAGS:
    return {"fold": FLAGS.fold, **(seeded if FLAGS.fold == "all" else {})}
  return {}


def define_distributed_flags() -> None:
  """The flags of a run over several processes (every training script)."""
  flags.DEFINE_string("coordinator_address", None, "Several processes "
                      "(jax.distributed): HOST:PORT of process 0's "
                      "coordinator; with --num_processes and --process_id. "
                      "Absent: one process.")
  flags.DEFINE_integer("num_processes", None, "Several processes: how many.",
                       lower_bound=1)
  flags.DEFINE_integer("process_id", None, "Several processes: this one's "
                       "index, 0 .. --num_processes - 1 (0 writes the "
                       "results and checkpoints).", lower_bound=0)
  flags.DEFINE_integer("distributed_timeout", 60, "Several processes: "
                       "seconds without a heartbeat from a process (or the "
                       "coordinator) before the others stop with an error, "
                       "and to wait for all to join.", lower_bound=5)


def init_distributed() -> None:
  """Joins the processes of ``--coordinator_address`` (``jax.distributed``;
  collectives over gloo on the CPU) before anything touches a device, or
  does nothing for one process. Exits with a message on incomplete flags.
  Only process 0 writes to standard output from then on."""
  given = [FLAGS.coordinator_address is not None,
           FLAGS.num_processes is not None, FLAGS.process_id is not None]
  if not any(given):
    return
  if not all(given):
    fail("several processes need all of --coordinator_address, "
         "--num_processes and --process_id")
  if FLAGS.process_id >= FLAGS.num_processes:
    fail(f"--process_id must be in [0, {FLAGS.num_processes}), got "
         f"{FLAGS.process_id}")
  if FLAGS.num_processes == 1:
    return
  # The CPU's collectives across processes (JAX's default there is none);
  # accelerators use their own (NCCL), whatever this says.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    jax.distributed.initialize(
        coordinator_address=FLAGS.coordinator_address,
        num_processes=FLAGS.num_processes, process_id=FLAGS.process_id,
        initialization_timeout=FLAGS.distributed_timeout,
        heartbeat_timeout_seconds=FLAGS.distributed_timeout)
  except Exception as e:  # pylint: disable=broad-except
    fail(f"process {FLAGS.process_id} could not join the "
         f"{FLAGS.num_processes} processes at {FLAGS.coordinator_address} "
         f"within {FLAGS.distributed_timeout}s: {e}")
  if FLAGS.process_id != 0:
    # Process 0 logs (the others run the same steps and would print the
    # same lines); errors still reach every process's stderr.
    sys.stdout = open(os.devnull, "w")  # pylint: disable=consider-using-with


def is_writer() -> bool:
  """Whether this process writes results (process 0, or the only one)."""
  return jax.process_index() == 0


def device_count() -> int:
  """``--devices``, checked against the devices JAX sees."""
  available = jax.device_count()
  count = available if FLAGS.devices is None else FLAGS.devices
  if jax.process_count() > 1 and count != available:
    fail(f"with {jax.process_count()} processes, --devices must be all "
         f"{available} devices of them (each process holds a share of the "
         f"items), got {FLAGS.devices}")
  if not 1 <= count <= available:
    fail(f"--devices must be in [1, {available}] (the devices JAX sees; set "
         "XLA_FLAGS=--xla_force_host_platform_device_count=N for N CPU "
         f"devices), got {FLAGS.devices}")
  return count


def items_mesh():
  """The mesh to split items over, or None for one device."""
  from glocal_jax import sharding  # pylint: disable=g-import-not-at-top
  count = device_count()
  return sharding.device_mesh(count) if count > 1 else None


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process
    return True
  return True


@contextlib.contextmanager
def output_lock(path: str):
  """Holds ``path/.lock`` (this process's id) while a run writes into
  ``path``; exits with status 2, before any work, when a live run holds it
  (a lock left by a dead one is taken over)."""
  lock = os.path.join(path, ".lock")
  for _ in range(2):
    try:
      fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
      break
    except FileExistsError:
      try:
        with open(lock) as f:
          pid = int(f.read().strip() or 0)
      except (OSError, ValueError):
        pid = 0
      if pid and pid != os.getpid() and _alive(pid):
        fail(f"another run (process {pid}) is writing into {path}; wait for "
             "it to end or use another --output_dir")
      os.remove(lock)
  else:
    fail(f"cannot lock {path}")
  with os.fdopen(fd, "w") as f:
    f.write(str(os.getpid()))
  try:
    yield
  finally:
    if os.path.exists(lock):
      os.remove(lock)


def check_output_dir(path: str) -> None:
  """Exits unless ``path`` is (or can be made) a writable folder: checked
  before any work, so a finished run is never lost to its last write."""
  try:
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
      pass
  except OSError as e:
    fail(f"cannot write results to {path}: {e.strerror or e}")


# --- The table and figure scripts. ---

PROTOCOLS = ("paper", "validation")
MODELS = ("glocal-k", "sparsefc", "i-autorec")
# Mean predictors (glocal_jax.baselines): no training, nothing to select.
MEAN_BASELINES = {"global-mean": "global", "item-mean": "item",
                  "user-mean": "user"}
# GLocal-K's item-based and user-based models averaged (rows.py): each
# seed's pair, each at its epoch selected on validation.
ENSEMBLES = ("glocal-k-items+users",)
ALL_MODELS = MODELS + tuple(MEAN_BASELINES) + ENSEMBLES
# Paper Table 2, one factor at a time from the paper's setting (3x3
# kernel, 1 conv layer, weighted aggregation): name -> (factor, value,
# config overrides).
VARIANTS = {
    "base": ("base", "3x3, 1 layer, weighted", {}),
    "kernel_5": ("kernel_size", "5x5", {"kernel_size": 5}),
    "kernel_7": ("kernel_size", "7x7", {"kernel_size": 7}),
    "conv_2": ("conv_layers", "2", {"conv_layers": 2}),
    "conv_3": ("conv_layers", "3", {"conv_layers": 3}),
    "mean": ("aggregation", "element-wise (mean)", {"aggregation": "mean"}),
}


def define_sweep_flags() -> None:
  """Flags of the table and figure scripts."""
  define_data_flags(multi=True)
  define_model_flags()
  define_distributed_flags()
  flags.DEFINE_integer("seeds", 5, "Seeds per row, trained as one compiled "
                       "program (seeds 0..N-1).")
  flags.DEFINE_list("protocols", list(PROTOCOLS),
                    "paper: best fine-tuning epoch on test; validation: "
                    "epoch selected on a held-out share of the training "
                    "ratings, test reported there.")
  flags.DEFINE_float("validation_fraction", 0.05,
                     "Share of training ratings held out (validation "
                     "protocol).")
  flags.DEFINE_integer("validation_seed", 0, "Seed of the validation split.")
  flags.DEFINE_enum("seed_batching", "map", ["map", "vmap"],
                    "Seeds one after the other (lax.map) inside one "
                    "program, or as one jax.vmap-ed program "
                    "(docs/optimizer.md).")
  flags.DEFINE_string("output_dir", None, "Where the JSON/CSV/PNG go.")


def define_variants_flag() -> None:
  """``--variants``: the rows of paper Table 2 to run."""
  flags.DEFINE_list("variants", list(VARIANTS),
                    f"Rows to run, of {list(VARIANTS)}.")


def check_variants() -> list:
  """``(factor, value, overrides)`` of each ``--variants`` entry."""
  unknown = [v for v in FLAGS.variants if v not in VARIANTS]
  if unknown or not FLAGS.variants:
    fail(f"--variants must name some of {list(VARIANTS)}, got "
         f"{FLAGS.variants}")
  return [VARIANTS[v] for v in FLAGS.variants]


def check_sweep_flags(argv: list[str],
                      known: tuple[str, ...] = gdata.DATASETS) -> None:
  """Refuses stray arguments and out-of-range sweep flags (``--datasets``
  must be of ``known``), and an output folder that cannot be written."""
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
    if d == "file":
      fail("--datasets takes the named data sets under --data_root; a "
           "rating file of your own trains with experiments/train.py "
           "--dataset=file (or tune.py)")
    if d not in known:
      fail(f"unknown dataset {d!r}; known: "
           f"{[k for k in known if k != 'file']}")
  if not 0.0 < FLAGS.validation_fraction < 1.0:
    fail("--validation_fraction must be in (0, 1), got "
         f"{FLAGS.validation_fraction}")
  if FLAGS.optimizer == "scipy":
    fail("the table scripts train seeds as one compiled program: use a JAX "
         "--optimizer (optax or jaxopt)")
  init_distributed()
  if is_writer():
    check_output_dir(FLAGS.output_dir)


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
  found = False
  for name in FLAGS.datasets:
    data_dir = os.path.join(FLAGS.data_root, name) if FLAGS.data_root else None
    data = load(name, data_dir, skip_missing=True)
    if data is not None:
      found = True
      yield name, data
  if not found:
    none_found()


def none_found() -> None:
  """Exits: every ``--datasets`` entry was skipped for missing files."""
  fail(f"none of --datasets={','.join(FLAGS.datasets)} was found under "
       f"--data_root={FLAGS.data_root}: nothing ran (the messages above say "
       "where each file goes)")
