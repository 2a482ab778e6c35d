r"""Renders RESULTS.md from the JSON files the experiment scripts wrote.

  python experiments/make_results.py --results_dir=results --output=RESULTS.md

No number in RESULTS.md is typed in: each table is read from a file under
--results_dir, and each section names the command that wrote that file.
"""

import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import common  # pylint: disable=g-import-not-at-top

flags.DEFINE_string("results_dir", "results", "Folder of result JSON files.")
flags.DEFINE_string("output", "RESULTS.md", "Markdown file to write.")
FLAGS = flags.FLAGS

DATA = "--data_dir=../shared/data/{d}"


def fmt(x, digits=4):
  if x is None:
    return "-"
  if isinstance(x, list):
    return " ".join(fmt(v, digits) for v in x)
  if isinstance(x, float):
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.{digits}f}"
  return str(x)


def table(columns, rows):
  lines = ["| " + " | ".join(columns) + " |",
           "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
  return "\n".join(lines)


def load(name):
  path = os.path.join(FLAGS.results_dir, name)
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return json.load(f)


def device_name(device):
  if device == "cpu":
    return "2-core CPU"
  if isinstance(device, dict):
    return device.get("kind", "?") if device.get("platform") != "cpu" else (
        "2-core CPU")
  return str(device)


def training_section(out):
  rows = []
  for dataset in ("ml-100k", "ml-1m", "douban"):
    m = load(f"train_{dataset}_cpu.json")
    if m is None:
      continue
    rows.append([dataset, m["best"]["rmse"], m["best"]["mae"],
                 m["best"]["ndcg"], m["final"]["rmse"],
                 round(m["seconds"], 0), device_name(m["device"])])
  if rows:
    out.append("## Single runs, paper schedule, seed 0 "
               "(`experiments/train.py`)\n")
    out.append("`python experiments/train.py --dataset=D "
               "--data_dir=../shared/data/D --output_dir=DIR`, then "
               "`DIR/metrics.json` copied to `results/train_D_cpu.json`. "
               "best = paper protocol (best fine-tuning epoch on test).\n")
    out.append(table(["dataset", "best RMSE", "best MAE", "best NDCG",
                      "final RMSE", "seconds", "device"], rows))
    out.append("\nAuthors' README (one run): ML-100K 0.8889 / 0.6950 / "
               "0.9053, Douban 0.7208 / 0.5622 / 0.9435 (RMSE / MAE / NDCG).\n")


def benchmark_section(out):
  files = sorted(glob.glob(os.path.join(FLAGS.results_dir, "benchmark_*.json")))
  if not files:
    return
  out.append("## L-BFGS-B drivers (`experiments/benchmark.py`)\n")
  out.append("train_seconds excludes compilation and evaluation; "
             "best/final: test RMSE over fine-tuning epochs (mean over seeds "
             "when seeds > 1). See docs/optimizer.md.\n")
  for path in files:
    b = json.load(open(path))
    c = b["config"]
    out.append(f"### `{os.path.basename(path)}`: {b['dataset']} "
               f"{b['shape'][0]}x{b['shape'][1]}, {device_name(b['device'])}, "
               f"{c['pretrain_epochs']}x{c['pretrain_maxiter']} + "
               f"{c['finetune_epochs']}x{c['finetune_maxiter']} iterations\n")
    cols = ["driver", "seeds", "seed_batching", "compile_seconds",
            "train_seconds",
            "ms_per_iteration", "evaluations", "best_rmse", "final_rmse",
            "achieved_gflops"]
    defaults = {"seeds": 1}
    rows = []
    for r in b["rows"]:
      # Files written before --seed_batching existed batched with vmap.
      if r.get("seeds", 1) > 1:
        defaults["seed_batching"] = "vmap"
      rows.append([r.get(k, defaults.get(k)) for k in cols])
      defaults.pop("seed_batching", None)
    out.append(table(cols, rows) + "\n")


SWEEP_FLAGS = "--data_root=../shared/data --output_dir=DIR"
H100_SWEEP = "--seeds=5 --seed_batching=map " + SWEEP_FLAGS
H100_NOTE = ("NVIDIA H100, 5 seeds, both protocols; the three sweep scripts "
             "of a dataset shared the GPU at the same time, so `seconds` is "
             "a wall time under contention.")


def h100_sweep(name, dataset, extra=""):
  """(file, command, note) of a sweep run on the H100 for one dataset."""
  return (f"{name}_{dataset}_h100.json",
          f"python experiments/{name}.py --datasets={dataset} {H100_SWEEP}",
          H100_NOTE + extra)


FIGURE2_CUT = (" The 540-second limit of the device call stopped the run "
               "during its last row{}: SparseFC at ratio 1.0 is Table 1's "
               "`sparsefc` row.")
MEANS_NOTE = ("Mean predictors (`glocal_jax.mean_predictions`): nothing is "
              "trained or selected, so `seeds` is 1; computed on the 2-core "
              "CPU.")

# name -> (title, columns that identify a row, x column of the figure or
# None, [(file under --results_dir, command that wrote it, note)]).
SWEEPS = {
    "table1": (
        "Table 1: GLocal-K and baselines, 5 vmapped seeds", ["model"], None,
        [("table1_h100.json",
          "python experiments/table1.py --datasets=ml-100k,douban --seeds=5 "
          + SWEEP_FLAGS,
          "Run on an NVIDIA H100 in three invocations of this command (the "
          "first stopped at the device's 10-minute limit during Douban's "
          "validation row; the rest came from `--datasets=douban "
          "--models=sparsefc,i-autorec` and `--datasets=douban "
          "--models=glocal-k --protocols=validation`), rows concatenated."),
         ("table1_means_cpu.json",
          "python experiments/table1.py --datasets=ml-100k,douban "
          "--models=global-mean,item-mean,user-mean " + SWEEP_FLAGS,
          MEANS_NOTE)]),
    "table2": (
        "Table 2: global kernel variants", ["factor", "variant"], None,
        [h100_sweep("table2", "ml-100k"), h100_sweep("table2", "douban")]),
    "figure2": (
        "Figure 2: RMSE vs training ratio", ["model", "ratio"], "ratio",
        [h100_sweep("figure2", "ml-100k", FIGURE2_CUT.format("s")),
         h100_sweep("figure2", "douban", FIGURE2_CUT.format("")),
         ("figure2_means_cpu.json",
          "python experiments/figure2.py --datasets=ml-100k,douban "
          "--models=item-mean,user-mean " + SWEEP_FLAGS,
          MEANS_NOTE + " The figure draws their paper-protocol rows only, "
          "to stay legible.")]),
    "figure3": (
        "Figure 3: RMSE vs pre-training epochs", ["pretrain_epochs"],
        "pretrain_epochs",
        [h100_sweep("figure3", "ml-100k"), h100_sweep("figure3", "douban")]),
}


def _runs(rows):
  """Rows grouped by dataset, protocol, seeds and device (one curve)."""
  groups = {}
  for r in rows:
    key = (r["dataset"], r["protocol"], r["seeds"], device_name(r["device"]))
    groups.setdefault(key, []).append(r)
  return groups


PAPER_BEST_PRETRAIN = {"ml-100k": 30, "ml-1m": 20, "douban": 20}


def figure3_checks(rows):
  """Where the curve has its minimum, against the paper's optimum."""
  lines = []
  for (dataset, protocol, seeds, device), group in _runs(rows).items():
    best = min(group, key=lambda r: r["rmse_mean"])
    grid = sorted(r["pretrain_epochs"] for r in group)
    lines.append(
        f"* {dataset}, {protocol} protocol ({seeds} seed(s), {device}): "
        f"lowest RMSE {best['rmse_mean']:.4f} at {best['pretrain_epochs']} "
        f"pre-training epochs of {grid} (paper's optimum: "
        f"{PAPER_BEST_PRETRAIN.get(dataset, '-')}).")
  return lines + [""] if lines else []


def figure2_checks(rows):
  """SparseFC minus GLocal-K RMSE at each training ratio."""
  lines = []
  for (dataset, protocol, seeds, device), group in _runs(rows).items():
    by = {(r["model"], r["ratio"]): r["rmse_mean"] for r in group}
    gaps = [f"{ratio}: {by[('sparsefc', ratio)] - by[('glocal-k', ratio)]:+.4f}"
            for ratio in sorted({r["ratio"] for r in group})
            if ("sparsefc", ratio) in by and ("glocal-k", ratio) in by]
    if not gaps:
      continue
    lines.append(f"* {dataset}, {protocol} protocol ({seeds} seed(s), "
                 f"{device}): SparseFC minus GLocal-K RMSE by training ratio "
                 f"(positive: GLocal-K better): {', '.join(gaps)}.")
  return lines + [""] if lines else []


CHECKS = {"figure2": figure2_checks, "figure3": figure3_checks}


def sweep_section(out, name):
  """One table per result file of sweep ``name``, and its figure."""
  title, keys, x, sources = SWEEPS[name]
  out.append(f"## {title}\n")
  out.append(f"Each file: the command's `DIR/{name}.json` copied to "
             "`results/`. paper protocol = best fine-tuning epoch on test; "
             "validation = epoch selected on 5% of the training ratings held "
             "out, test RMSE there.\n")
  cols = ["dataset", *keys, "protocol", "seeds", "rmse_mean", "rmse_std",
          "mae_mean", "ndcg_mean", "ensemble_rmse", "paper_rmse",
          "minus_paper", "per_seed_rmse", "seconds", "device"]
  all_rows = []
  for source, command, note in sources:
    rows = load(source)
    out.append(f"### `results/{source}`\n")
    out.append(f"`{command}`\n")
    if rows is None:
      out.append("Not run yet.\n")
      continue
    out.append(f"{note}\n")
    for r in rows:
      if r.get("paper_rmse") is not None:
        r["minus_paper"] = r["rmse_mean"] - r["paper_rmse"]
    out.append(table(cols, [[r.get(k) for k in cols] for r in rows]) + "\n")
    out += CHECKS.get(name, lambda rows: [])(rows)
    all_rows += rows
  # Mean predictors: one protocol is enough in a figure (they differ by
  # less than 0.001).
  all_rows = [r for r in all_rows if r["model"] not in common.MEAN_BASELINES
              or r["protocol"] == "paper"]
  if x is not None and all_rows:
    path = os.path.join(FLAGS.results_dir, f"{name}.png")
    if common.plot_rows(path, all_rows, x, lambda r: ", ".join(
        ([r["model"]] if name == "figure2" else [])
        + [f"{r['protocol']} protocol", f"{r['seeds']} seed(s)",
           device_name(r["device"])])):
      out.append(f"![{name}]({path})\n")


COLLAPSE_TOLERANCE = 0.01


def collapse_section(out):
  """Seeds that ended at the user-mean predictor's RMSE.

  An item-based autoencoder whose first layer saturates for every input
  outputs one vector for all items; the best such vector is each user's mean
  rating. A seed within COLLAPSE_TOLERANCE of that baseline (same dataset
  training ratio and protocol) is listed as collapsed.
  """
  user_mean = {}
  for source in ("table1_means_cpu.json", "figure2_means_cpu.json"):
    for r in load(source) or []:
      if r["model"] == "user-mean":
        user_mean[(r["dataset"], r.get("ratio", 1.0), r["protocol"])] = (
            r["rmse_mean"])
  if not user_mean:
    return
  rows = []
  for name, (_, keys, _, sources) in SWEEPS.items():
    for source, _, _ in sources:
      for r in load(source) or []:
        if r["model"] not in common.MODELS:
          continue
        reference = user_mean.get((r["dataset"], r.get("ratio", 1.0),
                                   r["protocol"]))
        if reference is None:
          continue
        seeds = r.get("per_seed_rmse", [])
        hits = [x for x in seeds if abs(x - reference) < COLLAPSE_TOLERANCE]
        if hits:
          setting = ", ".join(f"{k}={r[k]}" for k in keys if k in r)
          rows.append([name, r["dataset"], setting, r["protocol"],
                       f"{len(hits)} of {len(seeds)}", hits, reference])
  out.append("## Collapsed seeds\n")
  out.append("Seeds whose test RMSE lies within "
             f"{COLLAPSE_TOLERANCE} of the user-mean predictor's (same "
             "dataset, training ratio and protocol, from the mean-predictor "
             "files above): an autoencoder that outputs one vector for every item, "
             "whatever its input, does at best this well.\n")
  out.append(table(["sweep", "dataset", "setting", "protocol", "collapsed",
                    "their_rmse", "user_mean_rmse"], rows) + "\n")


INPUT_SCALE = (
    "input_scale_cpu.json",
    "python experiments/input_scale.py --datasets=ml-100k,douban --seeds=1 "
    "--seed_batching=map --protocols=paper " + SWEEP_FLAGS)


def input_scale_section(out):
  """What each Table 2 variant feeds the pre-trained autoencoder."""
  source, command = INPUT_SCALE
  out.append("## Table 2 diagnosis: the scale of the fine-tuning input\n")
  out.append(f"### `results/{source}`\n")
  out.append(f"`{command}`\n")
  rows = load(source)
  if rows is None:
    out.append("Not run yet.\n")
    return
  out.append("After the paper's pre-training, at the start of fine-tuning: "
             "the largest |GK| entry, R_hat (Eq. 6) averaged over the "
             "observed training ratings and its maximum, and the share of "
             "first-hidden-layer sigmoid units with |pre-activation| > 5. "
             "The reference row is the rating matrix the autoencoder was "
             "pre-trained on.\n")
  cols = ["dataset", "protocol", "seeds", "factor", "variant",
          "max_abs_kernel", "input_observed_mean", "input_max",
          "saturated_fraction"]
  out.append(table(cols, [[r.get(k) for k in cols] for r in rows]) + "\n")


def main(argv):
  del argv
  out = ["# Results\n",
         "Generated by `python experiments/make_results.py` from the JSON "
         "files in `results/`; every table names the command that wrote its "
         "file. Paper numbers are those of the CIKM'21 paper (Tables 1-2).\n"]
  training_section(out)
  benchmark_section(out)
  for name in SWEEPS:
    sweep_section(out, name)
  collapse_section(out)
  input_scale_section(out)
  with open(FLAGS.output, "w") as f:
    f.write("\n".join(out))
  print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
  app.run(main)
