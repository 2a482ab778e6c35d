r"""Side-by-side benchmark of the L-BFGS-B drivers on one dataset.

  python experiments/benchmark.py --dataset=ml-100k \
      --data_dir=../shared/data/ml-100k --drivers=jaxopt,scipy

Every driver starts from the same initialisation and runs the same schedule
in this one process. A driver spec may carry jaxopt options after colons,
e.g. ``jaxopt:linesearch_init=increase:scale_first_step=false``.

Per driver: compile_seconds (first call of each phase's epoch minus a later
epoch of that phase), train_seconds (all epochs, compilation and evaluation
excluded), ms_per_iteration, evaluations (loss-and-gradient calls), best and
final test RMSE over the fine-tuning epochs, XLA's FLOP count of one
evaluation of each phase, and the achieved GFLOP/s.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import jax
import numpy as np

import common  # pylint: disable=g-import-not-at-top
import glocal_jax as gj
from glocal_jax import experiment, training

common.define_data_flags()
common.define_model_flags()
flags.DEFINE_list("drivers", ["jaxopt", "scipy"], "Driver specs to compare.")
flags.DEFINE_integer("seed", 0, "Initialisation seed (shared by all drivers).")
flags.DEFINE_integer("seeds", 1, "Train seeds seed..seed+N-1 as one vmapped "
                     "program (jaxopt drivers); best/final RMSE are then the "
                     "means over seeds.")
flags.DEFINE_string("output_json", None, "Write the table here as JSON.")
flags.DEFINE_enum("seed_batching", "vmap", ["vmap", "map"],
                  "With --seeds > 1: vmap the seeds, or lax.map over them.")
FLAGS = flags.FLAGS


def parse_driver(spec: str) -> tuple[str, dict]:
  """``"name:key=value:..."`` -> (name, options) with typed values."""
  name, *pairs = spec.split(":")
  if name not in gj.optim.DRIVERS:
    common.fail(f"unknown driver {name!r} in --drivers; known: "
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


def flops_per_evaluation(loss_fn, *args) -> float:
  """FLOPs of one loss-and-gradient evaluation, from XLA's cost analysis."""
  compiled = jax.jit(jax.value_and_grad(loss_fn)).lower(*args).compile()
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return float(cost.get("flops", float("nan")))


def bench_driver(spec: str, config: gj.GLocalKConfig, data, params0) -> dict:
  name, options = parse_driver(spec)
  config = config.replace(optimizer=name)
  batched = FLAGS.seeds > 1
  try:
    fns = training.make_epoch_fns(config, batched=batched,
                                  seed_batching=FLAGS.seed_batching, **options)
  except (TypeError, ValueError) as e:
    common.fail(f"driver {spec!r}: {e}")
  ratings = jax.numpy.asarray(data.train)
  mask = jax.numpy.asarray(data.train_mask)
  # Warm-up: compile (and run once) each phase's epoch.
  first = {}
  for phase, tree in (("pretrain", params0["autoencoder"]),
                      ("finetune", params0)):
    tic = time.perf_counter()
    jax.block_until_ready(fns[phase](tree, ratings, mask))
    first[phase] = time.perf_counter() - tic

  def callback(record, params):
    if record.phase != "finetune":
      return None
    if batched:
      out = experiment.evaluate_seeds(config, params, data, "finetune")
      return {"test_rmse": out["test_rmse"]}
    return experiment.evaluate(config, params, data, "finetune")

  result = gj.train(config, data.train, data.train_mask, params=params0,
                    callback=callback, epoch_fns=fns)
  history = result.history
  seconds = {p: [r.seconds for r in history if r.phase == p]
             for p in training.PHASES}
  compile_seconds = sum(max(0.0, first[p] - float(np.median(seconds[p])))
                        for p in training.PHASES if seconds[p])
  train_seconds = sum(r.seconds for r in history)
  # Batched seeds: a batched epoch lasts as long as its longest seed.
  iterations = sum(int(np.max(r.iterations)) for r in history)
  evals = {p: sum(int(np.sum(r.evaluations)) for r in history if r.phase == p)
           for p in training.PHASES}
  one = jax.tree.map(lambda x: x[0], params0) if batched else params0
  flops = {
      "pretrain": flops_per_evaluation(training.pretrain_loss_fn(config),
                                       one["autoencoder"], ratings, mask),
      "finetune": flops_per_evaluation(training.finetune_loss_fn(config),
                                       one, ratings, mask)}
  total_flops = sum(evals[p] * flops[p] for p in training.PHASES)
  rmses = np.array([r.metrics["test_rmse"] for r in history
                    if r.phase == "finetune"]).reshape(-1, FLAGS.seeds)
  return {
      "driver": spec,
      "seeds": FLAGS.seeds,
      "seed_batching": FLAGS.seed_batching if batched else None,
      "compile_seconds": round(compile_seconds, 2),
      "train_seconds": round(train_seconds, 2),
      "ms_per_iteration": round(1000 * train_seconds / max(iterations, 1), 1),
      "iterations": iterations,
      "evaluations": sum(evals.values()),
      "best_rmse": round(float(rmses.min(0).mean()), 4) if rmses.size else None,
      "final_rmse": round(float(rmses[-1].mean()), 4) if rmses.size else None,
      "gflops_per_evaluation": {p: round(f / 1e9, 2) for p, f in flops.items()},
      "achieved_gflops": round(total_flops / 1e9 / train_seconds, 1),
  }


def main(argv):
  if len(argv) > 1:
    common.fail(f"unexpected arguments {argv[1:]}")
  config = common.config_for(FLAGS.dataset)
  data = common.load(FLAGS.dataset, FLAGS.data_dir)
  print(data.summary())
  print(f"schedule: {config.pretrain_epochs} x {config.pretrain_maxiter} "
        f"pre-training, {config.finetune_epochs} x {config.finetune_maxiter} "
        "fine-tuning iterations")
  if FLAGS.seeds <= 0:
    common.fail(f"--seeds must be positive, got {FLAGS.seeds}")
  keys = jax.numpy.stack([jax.random.PRNGKey(FLAGS.seed + i)
                          for i in range(FLAGS.seeds)])
  init = lambda k: training.init_params(config, k, *data.shape)
  params0 = jax.vmap(init)(keys) if FLAGS.seeds > 1 else init(keys[0])
  rows = [bench_driver(spec, config, data, params0) for spec in FLAGS.drivers]
  device = experiment.device_info()
  columns = ["driver", "seeds", "seed_batching", "compile_seconds",
             "train_seconds", "ms_per_iteration", "evaluations", "best_rmse",
             "final_rmse", "achieved_gflops"]
  print(f"device: {device}")
  print(" | ".join(columns))
  for row in rows:
    print(" | ".join(str(row[c]) for c in columns))
  if FLAGS.output_json:
    common.write_json(FLAGS.output_json, {
        "device": device, "dataset": data.name, "shape": list(data.shape),
        "config": config.to_dict(), "seed": FLAGS.seed, "rows": rows})
    print(f"wrote {FLAGS.output_json}")


if __name__ == "__main__":
  app.run(main)
