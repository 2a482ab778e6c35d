r"""Benchmark: L-BFGS-B drivers and loss representations side by side.

  python experiments/benchmark.py --dataset=ml-100k \
      --data_dir=../shared/data/ml-100k --drivers=optax,jaxopt,scipy \
      --representations=dense,blocked,sparse --output_json=F

Two modes:

* ``--mode=schedule`` (default): for each driver and representation, the
  dataset's full schedule from one shared initialisation. Per row:
  compile_seconds (first epoch of each phase minus a later one),
  train_seconds (all epochs, compilation and evaluation excluded),
  ms_per_iteration, ms_per_evaluation, evaluations, best and final test
  RMSE over the fine-tuning epochs, analytic FLOPs per evaluation of each
  phase (:mod:`glocal_jax.flops`) and the achieved GFLOP/s.
* ``--mode=evaluation``: for each representation, the time of one
  loss-and-gradient evaluation of each phase (compiled once, run once,
  then the median of ``--repeats`` timed calls), its FLOPs, and the
  preparation and compile seconds: how a representation scales with the
  data (docs/scaling.md, ``experiments/scaling.py``).

Every row records the plan ``auto`` chose and its peak memory: with
``--isolate`` (the default) each row runs in a fresh process of its own, so
the peak (resident set on a CPU, the device's peak bytes in use on a GPU)
is that row's alone. A row that cannot run (out of memory, killed) is kept
with its error.

Several processes (``jax.distributed``, as train.py: ``--coordinator_address``,
``--num_processes``, ``--process_id``; ``--devices`` counts the global
devices) time the rows on all their devices together; they run the rows in
themselves (``--noisolate``: a fresh process per row would need every
process restarted), and process 0 writes ``--output_json``.

A driver spec may carry driver options after colons, e.g.
``jaxopt:linesearch_init=increase:scale_first_step=false`` or
``optax:first_step=unit`` (``first_step`` goes into the row's config).
"""

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import jax
import numpy as np

import glocal_jax as gj
from glocal_jax import epochs
from glocal_jax import evaluation
from glocal_jax import optim
from glocal_jax import runs
from glocal_jax import sharding
from glocal_jax import training
from glocal_jax.plan import REPRESENTATIONS
from glocal_jax.plan import parse_representation

import cli  # pylint: disable=g-import-not-at-top
from provenance import provenance
from reporting import write_json

cli.define_data_flags()
cli.define_model_flags()
cli.define_distributed_flags()
flags.DEFINE_enum("mode", "schedule", ["schedule", "evaluation"],
                  "schedule: train the full schedule per driver and "
                  "representation; evaluation: time one loss-and-gradient "
                  "evaluation per phase and representation.")
flags.DEFINE_list("drivers", [gj.GLocalKConfig.optimizer],
                  "Driver specs to compare (schedule mode).")
flags.DEFINE_list("representations", ["auto"],
                  f"Of {list(REPRESENTATIONS)}, or per "
                  "product, e.g. input=sparse:conv=dense:output=sparse.")
flags.DEFINE_integer("repeats", 5, "Timed evaluations per phase "
                     "(evaluation mode; the median is reported).",
                     lower_bound=1)
flags.DEFINE_integer("seed", 0, "Initialisation seed (shared by all rows).")
flags.DEFINE_integer("seeds", 1, "Train seeds seed..seed+N-1 as one compiled "
                     "program (optax or jaxopt drivers); best/final RMSE "
                     "are then the means over seeds.", lower_bound=1)
flags.DEFINE_enum("seed_batching", "map", ["map", "vmap"],
                  "With --seeds > 1: lax.map over the seeds, or vmap them.")
flags.DEFINE_bool("isolate", True, "Run each row in a fresh process, so that "
                  "its peak memory is its own.")
flags.DEFINE_string("output_json", None, "Write the table here as JSON.")
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


class Timing(NamedTuple):
  """How every row is run: what ``main`` reads from the flags once.

  Attributes:
    mode: ``"schedule"`` or ``"evaluation"``.
    seed: the first initialisation seed (shared by all rows).
    seeds: seeds ``seed..seed+seeds-1`` trained as one program.
    seed_batching: ``"map"`` or ``"vmap"`` (one device, ``seeds`` > 1).
    repeats: timed evaluations per phase (evaluation mode).
    devices: global devices the row runs on.
  """
  mode: str
  seed: int
  seeds: int
  seed_batching: str
  repeats: int
  devices: int


def parse_driver(spec: str) -> tuple[str, dict]:
  """``"name:key=value:..."`` -> (name, options) with typed values."""
  name, *pairs = spec.split(":")
  if name not in gj.optim.DRIVERS:
    cli.fail(f"unknown driver {name!r} in --drivers; known: "
                f"{list(gj.optim.DRIVERS)}")
  options = {}
  for pair in pairs:
    key, _, value = pair.partition("=")
    if value.lower() in ("true", "false"):
      options[key] = value.lower() == "true"
    else:
      try:
        options[key] = int(value)
      except ValueError:
        try:
          options[key] = float(value)
        except ValueError:
          options[key] = value
  return name, options


def peak_memory_bytes() -> int:
  """This process's peak: device bytes in use on an accelerator, resident
  set size on a CPU."""
  device = jax.devices()[0]
  if device.platform != "cpu":
    return max(int((d.memory_stats() or {}).get("peak_bytes_in_use", 0))
               for d in jax.local_devices())
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def flop_counts(config: gj.GLocalKConfig, data, train_data) -> dict:
  """Analytic FLOPs of one evaluation of each phase (the rating count read
  on the host: with several processes the device copy is not addressable
  in one)."""
  return runs.progress.phase_flops(config, train_data, data.train.count())


def initial_params(config: gj.GLocalKConfig, shape: tuple[int, int],
                   timing: Timing):
  """The rows' shared initialisation: one seed's, or ``timing.seeds``
  stacked along a leading axis."""
  keys = runs.seed_keys([timing.seed + i for i in range(timing.seeds)])
  return training.initial_params(config, keys if timing.seeds > 1 else
                                 keys[0], shape)


def schedule_row(spec: str, config: gj.GLocalKConfig, data,
                 train_data, timing: Timing) -> dict:
  """The full schedule with one driver; timings, RMSE and FLOP rates."""
  name, options = parse_driver(spec)
  # The first step is a config field, recorded with the row; scipy can only
  # take the unit one.
  first_step = options.pop("first_step",
                           "unit" if name == "scipy" else config.first_step)
  try:
    config = config.replace(optimizer=name, first_step=first_step)
  except ValueError as e:
    cli.fail(f"driver {spec!r}: {e}")
  batched = timing.seeds > 1
  spread = batched and timing.devices > 1
  seed_batching = "devices" if spread else timing.seed_batching
  try:
    fns = epochs.make_epoch_fns(
        config, batched=batched, seed_batching=seed_batching,
        mesh=(sharding.device_mesh(timing.devices, sharding.SEEDS) if spread
              else None),
        **options)
  except (TypeError, ValueError) as e:
    cli.fail(f"driver {spec!r}: {e}")
  params0 = initial_params(config, data.shape, timing)
  first = first_epoch_seconds(fns, params0, train_data, timing.seeds)

  def callback(record, params):
    if record.phase == "finetune":
      found = evaluation.split_metrics(config, params, train_data, data,
                                       "finetune")
      record.metrics = {"test_rmse": (found["models"] if batched else
                                      found)["test_rmse"]}

  history = gj.train(config, train_data, params=params0, callback=callback,
                     epoch_fns=fns).history
  return {"driver": spec, "first_step": config.first_step,
          "seeds": timing.seeds,
          "seed_batching": seed_batching if batched else None,
          **schedule_figures(history, first,
                             flop_counts(config, data, train_data),
                             timing.seeds)}


def first_epoch_seconds(fns: dict, params0, train_data, seeds: int) -> dict:
  """The warm-up: each phase's epoch compiled and run once, timed."""
  losses = jax.numpy.zeros((seeds,) if seeds > 1 else ())
  first = {}
  for phase, tree in (("pretrain", params0["autoencoder"]),
                      ("finetune", params0)):
    tic = time.perf_counter()
    jax.block_until_ready(fns[phase](
        tree, train_data, optim.EpochStart.unknown(losses, tree)))
    first[phase] = time.perf_counter() - tic
  return first


def schedule_figures(history: list, first: dict, counts: dict,
                     seeds: int) -> dict:
  """A schedule's times, counts, RMSE and FLOP rate from its epoch records
  (of ``seeds`` seeds), the warm-up times ``first`` and the FLOPs per
  evaluation ``counts``."""
  seconds = {p: [r.seconds for r in history if r.phase == p]
             for p in training.PHASES}
  compile_seconds = sum(max(0.0, first[p] - float(np.median(seconds[p])))
                        for p in training.PHASES if seconds[p])
  train_seconds = sum(r.seconds for r in history)
  # Batched seeds: a batched epoch lasts as long as its longest seed.
  iterations = sum(int(np.max(r.iterations)) for r in history)
  evals = {p: sum(int(np.sum(r.evaluations)) for r in history if r.phase == p)
           for p in training.PHASES}
  total_flops = sum(evals[p] * counts[p] for p in training.PHASES)
  rmses = np.array([r.metrics["test_rmse"] for r in history
                    if r.phase == "finetune"]).reshape(-1, seeds)
  return {
      "compile_seconds": round(compile_seconds, 2),
      "train_seconds": round(train_seconds, 2),
      "ms_per_iteration": round(1000 * train_seconds / max(iterations, 1), 1),
      "ms_per_evaluation": round(
          1000 * train_seconds / max(sum(evals.values()), 1), 1),
      "iterations": iterations,
      "evaluations": sum(evals.values()),
      "best_rmse": round(float(rmses.min(0).mean()), 4) if rmses.size else None,
      "final_rmse": round(float(rmses[-1].mean()), 4) if rmses.size else None,
      "gflops_per_evaluation": {p: round(f / 1e9, 2)
                                for p, f in counts.items()},
      "achieved_gflops": round(total_flops / 1e9 / train_seconds, 1),
  }


def evaluation_row(config: gj.GLocalKConfig, data, train_data,
                   timing: Timing) -> dict:
  """The time of one loss-and-gradient evaluation of each phase."""
  params = initial_params(config, data.shape, timing)
  out = {}
  counts = flop_counts(config, data, train_data)
  for phase, loss, tree in (
      ("pretrain", epochs.pretrain_loss_fn(config), params["autoencoder"]),
      ("finetune", epochs.finetune_loss_fn(config), params)):
    fn = jax.jit(jax.value_and_grad(loss))
    tic = time.perf_counter()
    compiled = fn.lower(tree, train_data).compile()
    compile_seconds = time.perf_counter() - tic
    jax.block_until_ready(compiled(tree, train_data))  # warm
    times = []
    for _ in range(timing.repeats):
      tic = time.perf_counter()
      value, _ = jax.block_until_ready(compiled(tree, train_data))
      times.append(time.perf_counter() - tic)
    seconds = float(np.median(times))
    out[phase] = {"ms_per_evaluation": round(1000 * seconds, 1),
                  "compile_seconds": round(compile_seconds, 2),
                  "gflops_per_evaluation": round(counts[phase] / 1e9, 2),
                  "achieved_gflops": round(counts[phase] / 1e9 / seconds, 1),
                  "loss": float(value)}
  return out


def run_row(spec: str, representation: str, config: gj.GLocalKConfig,
            data, timing: Timing) -> dict:
  """One row in this process: the items split over the devices for one
  seed, several seeds spread over them."""
  config = config.replace(representation=representation)
  tic = time.perf_counter()
  mesh = (sharding.device_mesh(timing.devices)
          if timing.devices > 1 and timing.seeds == 1 else None)
  train_data = evaluation.training_data(config, data.train, data.scale,
                                        copies=timing.seeds, mesh=mesh)
  jax.block_until_ready(train_data)
  row = {"representation": representation, "plan": train_data.plan.to_dict(),
         "devices": timing.devices,
         "prepare_seconds": round(time.perf_counter() - tic, 2)}
  print(f"-- {spec} {representation}: plan {train_data.plan.name}, "
        f"block {train_data.plan.block_size}, chunk "
        f"{train_data.plan.chunk_size}", flush=True)
  if timing.mode == "schedule":
    row.update(schedule_row(spec, config, data, train_data, timing))
  else:
    row.update(evaluation_row(config, data, train_data, timing))
  row["peak_memory_bytes"] = peak_memory_bytes()
  return row


def isolated_row(spec: str, representation: str) -> dict:
  """One row in a fresh process of this script (its own peak memory)."""
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "row.json")
    argv = [a for a in sys.argv[1:] if not a.startswith(
        ("--drivers", "--representations", "--output_json", "--isolate"))]
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *argv,
         f"--drivers={spec}", f"--representations={representation}",
         "--noisolate", f"--output_json={out}"],
        stdout=sys.stdout, stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode == 0:
      with open(out) as f:
        result = json.load(f)
      return {**result["rows"][0], "provenance": result["provenance"]}
  reason = (f"killed by signal {-proc.returncode} (out of memory?)"
            if proc.returncode < 0 else last_error(proc.stderr))
  print(f"-- {spec} {representation}: {reason}", flush=True)
  return {"driver": spec, "representation": representation,
          "error": reason}


def last_error(stderr: str) -> str:
  """The last ``SomeError: message`` line of a traceback (JAX appends a
  note about filtered frames after it), else the last line."""
  lines = stderr.strip().splitlines() or ["failed"]
  errors = [line for line in lines
            if re.match(r"^[\w.]+(Error|Exception|Interrupt)\b", line)]
  return (errors or lines)[-1]


COLUMNS = {
    "schedule": ["driver", "representation", "seeds", "compile_seconds",
                 "train_seconds", "ms_per_evaluation", "evaluations",
                 "best_rmse", "final_rmse", "achieved_gflops",
                 "peak_memory_bytes"],
    "evaluation": ["representation", "prepare_seconds", "pretrain",
                   "finetune", "peak_memory_bytes"],
}


def main(argv):
  if len(argv) > 1:
    cli.fail(f"unexpected arguments {argv[1:]}")
  for r in FLAGS.representations:
    try:
      parse_representation(r)
    except ValueError as e:
      cli.fail(str(e))
  for spec in FLAGS.drivers:
    parse_driver(spec)
  if FLAGS.isolate and (FLAGS.num_processes or 1) > 1:
    cli.fail("several processes run the rows in themselves: add --noisolate "
             "(a fresh process per row would need every process restarted)")
  cli.init_distributed()
  if FLAGS.output_json and cli.is_writer():
    cli.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.output_json)))
  timing = Timing(FLAGS.mode, FLAGS.seed, FLAGS.seeds, FLAGS.seed_batching,
                  FLAGS.repeats, cli.device_count())
  config = cli.config_for(FLAGS.dataset)
  data = cli.load(FLAGS.dataset, FLAGS.data_dir,
                  **cli.split_options(FLAGS.dataset))
  print(data.summary())
  print(f"schedule: {config.pretrain_epochs} x {config.pretrain_maxiter} "
        f"pre-training, {config.finetune_epochs} x {config.finetune_maxiter} "
        "fine-tuning iterations")
  # The evaluation mode runs no driver: one row per representation.
  specs = FLAGS.drivers if FLAGS.mode == "schedule" else FLAGS.drivers[:1]
  rows = []
  for spec in specs:
    for representation in FLAGS.representations:
      rows.append(isolated_row(spec, representation) if FLAGS.isolate else
                  run_row(spec, representation, config, data, timing))
  device = runs.device_info()
  print(f"device: {device}")
  columns = COLUMNS[FLAGS.mode]
  print(" | ".join(columns))
  for row in rows:
    print(" | ".join(str(row.get(c, row.get("error", "-")))
                     for c in columns))
  if FLAGS.output_json and cli.is_writer():
    write_json(FLAGS.output_json, {
        "provenance": provenance(),
        "device": device, "dataset": data.name, "shape": list(data.shape),
        "ratings": data.train.count(), "mode": FLAGS.mode,
        "config": config.to_dict(), "seed": FLAGS.seed, "rows": rows})
    print(f"wrote {FLAGS.output_json}")


if __name__ == "__main__":
  app.run(main)
