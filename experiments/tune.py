r"""Honest tuning: a grid searched on a validation split, then one test run.

  python experiments/tune.py --dataset=flixster \
      --data_dir=../shared/data/flixster --output_dir=DIR
  python experiments/train.py --dataset=flixster \
      --data_dir=../shared/data/flixster --validation_fraction=0.05 \
      --config_json=DIR/config.json --output_dir=RUN

The data flags are train.py's. ``--validation_fraction`` of the training
ratings is held out (seeded by ``--validation_seed``); every configuration
of the grid trains on the rest and is scored on it, with the test ratings
withheld from the search (glocal_jax.tuning). The chosen configuration,
cut at its best validation epoch, then trains once more with the test set
present, and its test metrics at that epoch are reported.

``--search`` sets the grid, e.g. ``lambda_2=10,20,40;orientation=items,users``
or ``hidden=(500,500),(250,250),100`` (any config field; a tuple in
parentheses, one hidden layer by its size alone); by default glocal_jax.tuning.default_space around the
dataset's preset (lambda_2 x 1/4 .. 2; lambda_s x 1/4 .. 1; the item-based
autoencoder: 12 configurations, one compiled program with --batching=map).
Writes DIR/tune.json (every configuration's validation
RMSE, the chosen one's config and test metrics, the provenance) and
DIR/config.json, which train.py takes as --config_json.

``--devices=N`` (N > 1) spreads each compiled group's configurations over N
devices, each running its share one after the other; over several
processes (``--coordinator_address``, ``--num_processes``,
``--process_id``, as train.py; ``--devices`` counts the global devices)
every process runs the search on its devices, the chosen configuration's
test run on its first, and process 0 writes.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import jax

import glocal_jax as gj
from glocal_jax import data as gdata
from glocal_jax import evaluation
from glocal_jax import runs
from glocal_jax import sharding
from glocal_jax import tuning

import cli  # pylint: disable=g-import-not-at-top
from provenance import provenance
from reporting import write_json

cli.define_data_flags()
cli.define_model_flags()
cli.define_distributed_flags()
flags.DEFINE_string("output_dir", None, "Where tune.json and config.json go.")
flags.DEFINE_string("search", None, "The grid: name=v1,v2;name=v1,... "
                    "(tuples in parentheses: hidden=(8,8),(16,16)) "
                    "(default: lambda_2 and lambda_s around the preset).")
flags.DEFINE_integer("seed", 0, "Seed of every run's initialisation.")
flags.DEFINE_float("validation_fraction", 0.05, "Share of the training "
                   "ratings held out to score the configurations.")
flags.DEFINE_integer("validation_seed", 0, "Seed of the validation split.")
flags.DEFINE_enum("batching", "map", list(tuning.BATCHING),
                  "How configurations that differ only in lambda_2, "
                  "lambda_s and dot_scale train: one compiled program "
                  "running them one after the other (map) or vectorised "
                  "(vmap), or a fit each (loop).")
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


def _value(text: str):
  """An integer, a float, or else the text itself (e.g. ``users``)."""
  for cast in (int, float):
    try:
      return cast(text)
    except ValueError:
      pass
  return text


# One value of a --search list: a tuple in parentheses, or plain text.
_ITEM = r"\s*\(([^()]*)\)\s*|([^,()]+)"


def _values(text: str) -> list:
  """``"1,(8,8),x"`` -> ``[1, (8, 8), "x"]``: commas split the values
  outside parentheses; a value in parentheses is a tuple (hidden sizes)."""
  if not re.fullmatch(rf"(?:{_ITEM})(?:,(?:{_ITEM}))*", text):
    raise ValueError(text)
  return [tuple(_value(v.strip()) for v in group.split(",")) if group
          else _value(plain.strip()) for group, plain in re.findall(_ITEM,
                                                                     text)]


def parse_space(text: str) -> dict:
  """``"a=1,2;hidden=(8,8),(16,16);b=x,y"`` -> ``{"a": [1, 2], "hidden":
  [(8, 8), (16, 16)], "b": ["x", "y"]}``, or a clear exit."""
  space = {}
  for part in filter(None, (p.strip() for p in text.split(";"))):
    name, equals, values = part.partition("=")
    if not (equals and name.strip() and values.strip()):
      cli.fail(f"--search: {part!r} is not name=value,value,...")
    try:
      space[name.strip()] = _values(values)
    except ValueError:
      cli.fail(f"--search: {part!r}: unbalanced parentheses or an empty "
               "value (a tuple value is written (8,8))")
  if not space:
    cli.fail(f"--search names no hyper-parameter: {text!r}")
  return space


def tune(config: gj.GLocalKConfig, data: gdata.RatingData, space: dict,
         seed: int, split: dict, batching: str = "map",
         mesh=None) -> dict:
  """The search, then the chosen configuration's test run: tune.json's
  content (without the provenance); ``split`` records how ``data.valid``
  was made; ``mesh`` spreads the configurations over its devices."""
  configs = tuning.grid(config, space)
  print(f"searching {len(configs)} configurations on {data.valid.count()} "
        "validation ratings (the test set withheld)")
  found = tuning.search(configs, data, seed, batching=batching, mesh=mesh)
  chosen = gj.GLocalKConfig(**found["chosen"]["config"])
  print(f"chosen: configuration {found['chosen']['index'] + 1}, validation "
        f"RMSE {found['chosen']['valid_rmse']:.4f}; training it with the "
        "test set present")
  model = gj.fit(chosen, data, jax.random.PRNGKey(seed), select="last")
  last = model.history[-1].metrics
  test = {k: last[f"test_{k}"] for k in evaluation.METRICS}
  counts = evaluation.evaluated_counts(data)
  test["ratings"] = counts["test_ratings"]
  found["chosen"].update(test=test, valid_rmse_rerun=last["valid_rmse"],
                         warnings=model.warnings)
  return {"dataset": data.name, "space": space, "seed": seed, **split,
          "data": {**runs.fingerprint(data), **counts},
          "mean_predictors": model.mean_predictors, **found}


def main(argv):
  if len(argv) > 1:
    cli.fail(f"unexpected arguments {argv[1:]}")
  if not FLAGS.output_dir:
    cli.fail("--output_dir is required")
  if not 0.0 < FLAGS.validation_fraction < 1.0:
    cli.fail("--validation_fraction must be in (0, 1), got "
             f"{FLAGS.validation_fraction}")
  cli.init_distributed()
  if cli.is_writer():
    cli.check_output_dir(FLAGS.output_dir)
  mesh = None
  if cli.device_count() > 1:
    if FLAGS.batching != "map":
      cli.fail(f"--devices={cli.device_count()} spreads the configurations "
               "over the devices, each running its share one after the "
               f"other: --batching=map, not {FLAGS.batching}")
    mesh = sharding.device_mesh(cli.device_count(), sharding.SEEDS)
  config = cli.config_for(FLAGS.dataset)
  space = (parse_space(FLAGS.search) if FLAGS.search else
           tuning.default_space(config))
  data = cli.load(FLAGS.dataset, FLAGS.data_dir,
                  **cli.split_options(FLAGS.dataset))
  data = gdata.split_validation(data, FLAGS.validation_fraction,
                                FLAGS.validation_seed)
  print(f"loaded {data.summary()}")
  try:
    result = tune(config, data, space, FLAGS.seed,
                  {"validation_fraction": FLAGS.validation_fraction,
                   "validation_seed": FLAGS.validation_seed},
                  FLAGS.batching, mesh)
  except ValueError as e:
    cli.fail(str(e))
  result["provenance"] = provenance()
  if not cli.is_writer():  # several processes: process 0 writes
    return
  write_json(os.path.join(FLAGS.output_dir, "tune.json"), result)
  config_path = os.path.join(FLAGS.output_dir, "config.json")
  with open(config_path, "w") as f:
    json.dump(result["chosen"]["config"], f, indent=1)
  test = result["chosen"]["test"]
  print(f"chosen configuration's test RMSE {test['rmse']:.4f} MAE "
        f"{test['mae']:.4f} NDCG {test['ndcg']:.4f} on {test['ratings']} "
        f"ratings; wrote {FLAGS.output_dir}/tune.json and {config_path} "
        "(train.py --config_json)")


if __name__ == "__main__":
  app.run(main)
