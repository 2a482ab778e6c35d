r"""Renders RESULTS.md, and the measured tables of docs/, from results/.

  python experiments/make_results.py --results_dir=results --output=RESULTS.md

Nothing here is typed in: every table is read from a JSON file under
--results_dir, and the command, commit and machine above it come from that
file's ``provenance`` block (``experiments/provenance.py``). A file without
one is shown as such, with the commit that added it to the repository (from
git) and the notes kept in the file. Run twice on the same files, the
output is the same byte for byte.

The docs hold generated tables between ``<!-- results:STEM -->`` and
``<!-- /results:STEM -->`` lines (``--docs``), STEM a result file's name
without ``.json``: the text around them is written by hand, the numbers
between them are that file's rendered header and table.
"""

import glob
import json
import os
import re
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import cli  # pylint: disable=g-import-not-at-top
import reporting

flags.DEFINE_string("results_dir", "results", "Folder of result JSON files.")
flags.DEFINE_string("output", "RESULTS.md", "Markdown file to write.")
flags.DEFINE_list("docs", ["docs/scaling.md", "docs/optimizer.md",
                           "docs/data.md", "docs/research.md",
                           "README.md"],
                  "Files whose <!-- results:NAME --> sections are rendered.")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fmt(x, digits=4):
  if x is None:
    return "-"
  if isinstance(x, bool):
    return str(x).lower()
  if isinstance(x, list):
    return " ".join(fmt(v, digits) for v in x)
  if isinstance(x, float):
    if x != 0 and abs(x) < 10 ** -digits:
      return f"{x:.2e}"
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.{digits}f}"
  return str(x)


def table(columns, rows):
  lines = ["| " + " | ".join(columns) + " |",
           "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
  return "\n".join(lines)


def describe_cpu(cpu: dict) -> str:
  """``MODEL (family F model M, VECTOR, N cores)``, with what the file
  records (files before the family and vector fields: model and cores)."""
  parts = ([f"family {cpu['family']} model {cpu['model_number']}"]
           if cpu.get("family") else []) + (
               [cpu["vector"]] if cpu.get("vector") else [])
  return f"{cpu['model']} ({', '.join(parts + [cores(cpu)])})"


def cores(cpu: dict) -> str:
  """``N cores``, and how many of them the run was pinned to where fewer."""
  used = cpu.get("used_cores", cpu["cores"])
  return f"{cpu['cores']} cores" + (
      f", pinned to {used}" if used < cpu["cores"] else "")


class Result:
  """One result file: its rows, provenance, notes and header fields."""

  def __init__(self, path: str):
    self.path = path
    self.name = os.path.basename(path)
    with open(path) as f:
      data = json.load(f)
    self.data = data
    self.rows = data.get("rows", [])
    self.provenance = data.get("provenance")
    self.notes = data.get("notes", [])

  def header(self) -> list[str]:
    """How the file was made: command, commit, versions and machine."""
    out = [f"### `results/{self.name}`\n"]
    p = self.provenance
    if p is None:
      out.append("This file records no provenance: it was written before "
                 "result files recorded their command and machine. "
                 f"{added_in(self.path)}\n")
    else:
      dirty = " (with uncommitted changes)" if p.get("git_dirty") else ""
      device = p["device"]
      machine = (f"{device['count']} x {device['kind']}"
                 if device["platform"] != "cpu" else "no accelerator")
      versions = ", ".join(f"{k} {v}" for k, v in p["versions"].items() if v)
      env = "".join(f"{k}={shlex.quote(v)} "
                    for k, v in p.get("environment", {}).items())
      out.append(f"`{env}{p['command']}`\n")
      out.append(f"Commit `{str(p['git_commit'])[:10]}`{dirty}, started "
                 f"{p['started']}; {machine}; CPU {describe_cpu(p['cpu'])}; "
                 f"Python {p['python']}, {versions}.\n")
    out += [f"Note: {n}\n" for n in self.notes]
    return out


def added_in(path: str) -> str:
  """The commit that added ``path``, from git (empty without history)."""
  try:
    out = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%h %ad %s",
         "--date=short", "--", os.path.relpath(path, ROOT)], cwd=ROOT,
        capture_output=True, text=True, check=True, timeout=30).stdout
  except (OSError, subprocess.SubprocessError):
    return ""
  lines = out.strip().splitlines()
  return f"Added in commit `{lines[-1]}`." if lines else ""




class Report(list):
  """RESULTS.md's lines as the sections append them, the folder of result
  files they read (``results_dir``), and each file's rendered header and
  table by file stem (``rendered``): what the docs' ``<!-- results:STEM
  -->`` sections show."""

  def __init__(self, lines: list[str], results_dir: str):
    super().__init__(lines)
    self.results_dir = results_dir
    self.rendered = {}

  def results(self, pattern: str) -> list[Result]:
    """The result files of ``results_dir`` matching ``pattern``, sorted."""
    return [Result(p) for p in sorted(glob.glob(os.path.join(
        self.results_dir, pattern)))]


def render(out: Report, result: Result, lines: list[str]) -> None:
  """Appends a file's header and ``lines`` to ``out``, and keeps them."""
  chunk = result.header() + lines
  out.rendered[result.name[:-len(".json")]] = chunk
  out += chunk


def machine(row: dict, result: Result) -> str:
  """The device a row ran on: from the file's provenance, else the row."""
  if result.provenance is not None:
    d = result.provenance["device"]
    return (d["kind"] if d["platform"] != "cpu"
            else f"CPU ({cores(result.provenance['cpu'])})")
  device = row.get("device", "?")
  if isinstance(device, dict):
    device = device.get("kind", "?")
  return "CPU (cores not recorded)" if device == "cpu" else str(device)


# --- Sections. ---

def section(out: list, pattern: str, title: str) -> list[Result]:
  """The result files matching ``pattern``; when there are any, the
  section's ``title`` is appended to ``out`` first, as a ``##`` line."""
  files = out.results(pattern)
  if files:
    out.append(f"## {title}\n")
  return files


def rating(x):
  """A rating-scale figure to 4 significant digits (0.8923, 19.65)."""
  return "-" if x is None else f"{x:.4g}"


def best_mean(means: dict, split: str):
  """``"user 19.93"``: the best mean predictor of ``split`` (or None)."""
  if split not in (means or {}):
    return None
  by, value = min(means[split].items(), key=lambda kv: kv[1])
  return f"{by} {rating(value)}"


def training_section(out):
  files = section(out, "train_*.json",
                  "Single runs, paper schedule (`experiments/train.py`)")
  if not files:
    return
  out.append("best = paper protocol (best fine-tuning epoch on test); "
             "selected = honest protocol (the epoch of either phase with the "
             "least validation RMSE, its test RMSE), where the run held out "
             "a validation split; best mean = the best mean predictor on the "
             "same test set, trained on the same ratings (files that "
             "predate it show -); seconds = the whole run, split into "
             "training, evaluation and compilation where the file records "
             "them.\n")
  for r in files:
    m = r.data
    selected = m.get("selected", {})
    render(out, r, [table(
        ["dataset", "best RMSE", "best MAE", "best NDCG", "final RMSE",
         "selected RMSE", "best mean", "test ratings", "seconds", "train s",
         "evaluation s", "compile s", "device"],
        [[m["dataset"], rating(m["best"]["rmse"]), rating(m["best"]["mae"]),
          m["best"]["ndcg"], rating(m["final"]["rmse"]),
          rating(selected.get("rmse")),
          best_mean(m.get("mean_predictors"), "test"),
          m["data"].get("test_ratings") if isinstance(m.get("data"), dict)
          else None, m["seconds"], m.get("train_seconds"),
          m.get("evaluation_seconds"), m.get("compile_seconds"),
          machine(m, r)]]) + "\n"])
    out += [f"Warning: {w}\n" for w in m.get("warnings", [])]


def suite_section(out):
  """The benchmark suite (experiments/suite.py): every row, the published
  numbers beside it, and the figure."""
  files = section(out, "suite_*.json",
                  "The benchmark suite (`experiments/suite.py`)")
  for r in files:
    cols = ["entry", "fold", "model", "protocol", "seeds", "rmse_mean",
            "rmse_std", "mae_mean", "ndcg_mean", "seconds", "device"]
    rows = [[row.get("entry"), row.get("fold"), row["model"],
             row["protocol"], row.get("seeds"), rating(row["rmse_mean"]),
             rating(row.get("rmse_std")), rating(row.get("mae_mean")),
             row.get("ndcg_mean"), f"{row.get('seconds', 0):.1f}",
             machine(row, r)]
            for row in r.rows]
    # An ensemble's rows: its members' own RMSE beside it.
    members = [k for k in ("items_rmse_mean", "users_rmse_mean")
               if any(k in row for row in r.rows)]
    cols[6:6] = members
    for row, cells in zip(r.rows, rows, strict=True):
      cells[6:6] = [rating(row.get(k)) for k in members]
    published = [[dataset, model, rating(value),
                  "yes" if side else "no", source]
                 for dataset, entries in r.data.get("published", {}).items()
                 for model, value, side, source in entries]
    lines = [table(cols, rows) + "\n",
             "Published test RMSE on the same splits (facts from the papers; "
             "side information as marked):\n",
             table(["dataset", "model", "RMSE", "side information",
                    "source"], published) + "\n"]
    png = r.path[:-len(".json")] + ".png"
    if os.path.exists(png):
      lines.append(f"![{r.name[:-5]}]({os.path.relpath(png, ROOT)})\n")
    render(out, r, lines)


# The entries of the at-a-glance table, in order, and where their trained
# rows come from: the suite's files, and Table 1's of this code (CPU).
GLANCE = ("ml-100k", "ml-100k-folds", "douban", "flixster", "yahoo_music",
          "ml-1m")
GLANCE_FILES = ("suite_*.json", "table1_*_cpu.json")
GLANCE_MODELS = ("glocal-k", "sparsefc", "i-autorec") + cli.ENSEMBLES


def _glance_row(entry, shown, found, mean, published):
  """One data set's cells of the table at a glance: each (model, protocol)
  in ``shown``, the best mean predictor ``mean`` (name, RMSE), the best
  published number without side information and GLocal-K's honest gap to
  it."""
  cells = []
  for model, protocol in shown:
    hit = found.get((entry, model, protocol))
    cells.append("-" if hit is None else
                 f"{rating(hit[0]['rmse_mean'])} +- "
                 f"{hit[0].get('rmse_std') or 0:.2g}")
  side_free = [(v, m) for m, v, side, _ in
               published.get(entry.replace("-folds", ""), []) if not side]
  best = min(side_free) if side_free else None
  honest = found.get((entry, "glocal-k", "validation"))
  gap = ("-" if best is None or honest is None else
         f"{honest[0]['rmse_mean'] - best[0]:+.2g} "
         f"({(honest[0]['rmse_mean'] / best[0] - 1) * 100:+.1f}%)")
  return [entry, *cells,
          "-" if mean is None else f"{rating(mean[1])} ({mean[0]})",
          "-" if best is None else f"{rating(best[0])} ({best[1]})", gap]


def glance_section(out):
  """One table over every data set: GLocal-K and the baselines under each
  protocol (5-seed mean +- std, from the suite's and Table 1's files), the
  best mean predictor and the best published rating-only number; and the
  figure of it (``results/glance.png``)."""
  files = [r for pattern in GLANCE_FILES for r in out.results(pattern)]
  found, means, published = {}, {}, {}
  for r in files:
    published.update(r.data.get("published", {}))
    for row in r.rows:
      entry = row.get("entry") or row["dataset"]
      if entry == "ml-100k-folds" and row.get("fold") != "1-5":
        continue  # the folds' mean +- std row stands for them
      if row["model"] in cli.MEAN_BASELINES and row["protocol"] == "paper":
        best = means.get(entry)
        if best is None or row["rmse_mean"] < best[1]:
          means[entry] = (row["model"], row["rmse_mean"])
      elif row["model"] in GLANCE_MODELS:
        found[(entry, row["model"], row["protocol"])] = (row, r.name)
  entries = [e for e in GLANCE if any(k[0] == e for k in found)]
  if not entries:
    return
  out.append("## At a glance\n")
  out.append("Test RMSE on each data set's whole test set, 5-seed mean +- "
             "std: `validation` selects the epoch on 5% of the training "
             "ratings held out (the honest protocol), `paper` takes the best "
             "epoch on test as the paper does. Beside them, the best mean "
             "predictor on the same split, the best published number "
             "without side information, and how far GLocal-K's honest "
             "(validation) figure lies from it. Each figure's file, with "
             "its command and machine, is in the sections below.\n")
  label = lambda model, protocol: f"{model} ({protocol})"
  shown = [(m, p) for m in GLANCE_MODELS for p in ("validation", "paper")
           if any((e, m, p) in found for e in entries)]
  rows = [_glance_row(entry, shown, found, means.get(entry), published)
          for entry in entries]
  out.append(table(["data set", *(label(*c) for c in shown),
                    "best mean predictor", "best published",
                    "glocal-k (validation) - best published"], rows) + "\n")
  sources = sorted({name for _, name in found.values()})
  out.append("From " + ", ".join(f"`results/{n}`" for n in sources) + ".\n")
  path = os.path.join(out.results_dir, "glance.png")
  reporting.plot_glance(path, {
      entry: {label(m, p): found[(entry, m, p)][0] for m, p in shown
              if (entry, m, p) in found} for entry in entries},
      {e: means[e][1] for e in entries if e in means},
      [label(*c) for c in shown])
  if os.path.exists(path):  # drawn now, or committed: linked either way
    out.append(f"![glance]({os.path.relpath(path, ROOT)})\n")


def tune_section(out):
  """Each tuning run (experiments/tune.py): the chosen configuration, its
  validation and test RMSE, against the best mean predictor."""
  files = section(out, "tune_*.json",
                  "Honest tuning (`experiments/tune.py`)")
  if files:
    out.append("Every configuration trained on the training ratings less a "
               "validation share, scored there with the test set withheld; "
               "the chosen one (least validation RMSE, cut at its epoch) "
               "trained once more with the test set present.\n")
  for r in files:
    t = r.data
    c = t["chosen"]["config"]
    valid = [x["valid_rmse"] for x in t["configurations"]]
    rows = [[t["dataset"], len(t["configurations"]),
             ",".join(str(h) for h in c["hidden"]), c["lambda_2"],
             c["lambda_s"], c["dot_scale"], c.get("orientation", "items"),
             f"{c['pretrain_epochs']}+{c['finetune_epochs']}",
             rating(t["chosen"]["valid_rmse"]),
             f"{rating(min(valid))} .. {rating(max(valid))}",
             rating(t["chosen"]["test"]["rmse"]),
             t["chosen"]["test"]["ratings"],
             best_mean(t.get("mean_predictors"), "test"),
             t.get("batching", "loop"), round(t["seconds"])]]
    render(out, r, [table(
        ["dataset", "configurations", "hidden", "lambda_2", "lambda_s",
         "dot_scale", "orientation", "epochs", "valid RMSE",
         "all valid RMSE", "test RMSE", "test ratings", "best mean (test)",
         "batching", "search s"], rows) + "\n"])


BENCHMARK_COLUMNS = [
    "driver", "first_step", "representation", "seeds", "seed_batching",
    "compile_seconds",
    "train_seconds", "ms_per_iteration", "ms_per_evaluation", "iterations",
    "evaluations", "best_rmse", "final_rmse", "achieved_gflops",
    "peak_memory_bytes"]


def benchmark_section(out):
  files = section(out, "benchmark_*.json",
                  "Drivers and representations (`experiments/benchmark.py`)")
  if not files:
    return
  out.append("train_seconds excludes compilation and evaluation; best/final: "
             "test RMSE over the fine-tuning epochs (means over seeds when "
             "seeds > 1); achieved_gflops from the analytic FLOP count "
             "(`glocal_jax.flops`). See docs/optimizer.md.\n")
  for r in files:
    b = r.data
    c = b["config"]
    lines = [f"{b['dataset']} {b['shape'][0]} x {b['shape'][1]}, "
             f"{machine(b, r)}, {c['pretrain_epochs']} x "
             f"{c['pretrain_maxiter']} + {c['finetune_epochs']} x "
             f"{c['finetune_maxiter']} iterations.\n"]
    rows = b["rows"]
    if b.get("mode") == "evaluation":
      lines.append(evaluation_table(rows) + "\n")
    else:
      # GFLOP/s in files without provenance came from XLA's cost analysis,
      # which misses cuBLAS on GPUs: not rendered.
      columns = [k for k in BENCHMARK_COLUMNS
                 if any(k in row for row in rows)
                 and (r.provenance is not None or k != "achieved_gflops")]
      lines.append(table(columns, [[row.get(k, row.get("error"))
                                    for k in columns] for row in rows])
                   + "\n")
    render(out, r, lines)


def evaluation_table(rows: list[dict], lead=("representation",)) -> str:
  columns = [*lead, "plan", "pretrain ms", "finetune ms",
             "pretrain GFLOP/s", "finetune GFLOP/s", "peak GiB"]
  body = []
  for row in rows:
    done = "pretrain" in row
    body.append([*(row.get(k) for k in lead),
                 row.get("plan", {}).get("name"),
                 row["pretrain"]["ms_per_evaluation"] if done else
                 row.get("skipped") or row.get("error"),
                 row["finetune"]["ms_per_evaluation"] if done else None,
                 row["pretrain"]["achieved_gflops"] if done else None,
                 row["finetune"]["achieved_gflops"] if done else None,
                 round(row["peak_memory_bytes"] / 2**30, 2) if done
                 else None])
  return table(columns, body)


def scaling_section(out):
  files = section(out, "scaling_*.json",
                  "Scaling (`experiments/scaling.py`)")
  if not files:
    return
  out.append("Milliseconds per loss-and-gradient evaluation of each phase "
             "(median), analytic GFLOP/s, and the peak memory of each row's "
             "own process; synthetic ratings of each shape with skewed "
             "popularity. See docs/scaling.md.\n")
  for r in files:
    lines = [evaluation_table(r.rows, lead=("point", "ratings",
                                            "representation")) + "\n"]
    path = os.path.join(out.results_dir, r.name[:-5] + ".png")
    if os.path.exists(path):
      # From the repository's root, so that the link works in docs/ too.
      lines.append(f"![{r.name[:-5]}](/{os.path.relpath(path, ROOT)})\n")
    render(out, r, lines)


# name -> (title, columns that identify a row, x column of the figure).
SWEEPS = {
    "table1": ("Table 1: GLocal-K and baselines", ["model"], None),
    "table2": ("Table 2: global kernel variants", ["factor", "variant"],
               None),
    "figure2": ("Figure 2: RMSE vs training ratio", ["model", "ratio"],
                "ratio"),
    "figure3": ("Figure 3: RMSE vs pre-training epochs",
                ["pretrain_epochs"], "pretrain_epochs"),
}
PAPER_BEST_PRETRAIN = {"ml-100k": 30, "ml-1m": 20, "douban": 20}


def _runs(rows, result):
  """Rows grouped by dataset, protocol, seeds and device (one curve)."""
  groups = {}
  for r in rows:
    key = (r["dataset"], r["protocol"], r["seeds"], machine(r, result))
    groups.setdefault(key, []).append(r)
  return groups


def figure3_checks(rows, result):
  """Where the curve has its minimum, against the paper's optimum."""
  lines = []
  for (dataset, protocol, seeds, device), group in _runs(rows,
                                                         result).items():
    best = min(group, key=lambda r: r["rmse_mean"])
    grid = sorted(r["pretrain_epochs"] for r in group)
    lines.append(
        f"* {dataset}, {protocol} protocol ({seeds} seed(s), {device}): "
        f"lowest RMSE {best['rmse_mean']:.4f} at {best['pretrain_epochs']} "
        f"pre-training epochs of {grid} (paper's optimum: "
        f"{PAPER_BEST_PRETRAIN.get(dataset, '-')}).")
  return lines + [""] if lines else []


def figure2_checks(rows, result):
  """SparseFC minus GLocal-K RMSE at each training ratio."""
  lines = []
  for (dataset, protocol, seeds, device), group in _runs(rows,
                                                         result).items():
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
  title, keys, x = SWEEPS[name]
  files = section(out, f"{name}_*.json", title)
  if not files:
    return
  out.append("paper protocol = best fine-tuning epoch on test; validation = "
             "epoch selected on 5% of the training ratings held out, test "
             "RMSE there.\n")
  cols = ["dataset", *keys, "protocol", "seeds", "rmse_mean", "rmse_std",
          "mae_mean", "ndcg_mean", "ensemble_rmse", "paper_rmse",
          "minus_paper", "per_seed_rmse", "seconds", "device"]
  all_rows = []
  for r in files:
    rows = [{**row, "device": machine(row, r)} for row in r.rows]
    for row in rows:
      if row.get("paper_rmse") is not None:
        row["minus_paper"] = row["rmse_mean"] - row["paper_rmse"]
    note = [f"Note: {r.data['note']}\n"] if r.data.get("note") else []
    render(out, r, [*note, table(cols, [[row.get(k) for k in cols]
                                        for row in rows])
                    + "\n", *CHECKS.get(name, lambda rows, result: [])(
                        r.rows, r)])
    all_rows += rows
  # Mean predictors: one protocol is enough in a figure (they differ by
  # less than 0.001).
  all_rows = [r for r in all_rows if r["model"] not in cli.MEAN_BASELINES
              or r["protocol"] == "paper"]
  if x is not None and all_rows:
    path = os.path.join(out.results_dir, f"{name}.png")
    reporting.plot_rows(path, all_rows, x, lambda r: ", ".join(
        ([r["model"]] if name == "figure2" else [])
        + [f"{r['protocol']} protocol", f"{r['seeds']} seed(s)",
           r["device"]]))
    if os.path.exists(path):  # drawn now, or committed: linked either way
      out.append(f"![{name}]({os.path.relpath(path, ROOT)})\n")


COLLAPSE_TOLERANCE = 0.01


def collapse_section(out):
  """Seeds that ended at the user-mean predictor's RMSE.

  An item-based autoencoder whose first layer saturates for every input
  outputs one vector for all items; the best such vector is each user's mean
  rating. A seed within COLLAPSE_TOLERANCE of that baseline (same dataset
  training ratio and protocol) is listed as collapsed.
  """
  sweeps = [(name, r) for name in SWEEPS
            for r in out.results(f"{name}_*.json")]
  user_mean = {(row["dataset"], row.get("ratio", 1.0), row["protocol"]):
               row["rmse_mean"] for _, r in sweeps for row in r.rows
               if row.get("model") == "user-mean"}
  if not user_mean:
    return
  rows = []
  for name, r in sweeps:
    keys = SWEEPS[name][1]
    for row in r.rows:
      if row["model"] not in cli.MODELS:
        continue
      reference = user_mean.get((row["dataset"], row.get("ratio", 1.0),
                                 row["protocol"]))
      if reference is None:
        continue
      seeds = row.get("per_seed_rmse", [])
      hits = [x for x in seeds if abs(x - reference) < COLLAPSE_TOLERANCE]
      if hits:
        setting = ", ".join(f"{k}={row[k]}" for k in keys if k in row)
        rows.append([r.name, row["dataset"], setting, row["protocol"],
                     f"{len(hits)} of {len(seeds)}", hits, reference])
  out.append("## Collapsed seeds\n")
  out.append("Seeds whose test RMSE lies within "
             f"{COLLAPSE_TOLERANCE} of the user-mean predictor's (same "
             "dataset, training ratio and protocol, from the mean-predictor "
             "rows above): an autoencoder that outputs one vector for every "
             "item, whatever its input, does at best this well.\n")
  out.append(table(["file", "dataset", "setting", "protocol", "collapsed",
                    "their_rmse", "user_mean_rmse"], rows) + "\n")


def input_scale_section(out):
  """What each Table 2 variant feeds the pre-trained autoencoder."""
  files = section(out, "input_scale_*.json",
                  "Table 2 diagnosis: the scale of the fine-tuning input")
  if not files:
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
  for r in files:
    render(out, r, [table(cols, [[row.get(k) for k in cols]
                                 for row in r.rows]) + "\n"])


def peer_section(out):
  """Whole runs against the PyTorch + SciPy peer (``experiments/peer.py``)."""
  files = section(out, "peer_*.json",
                  "Against the PyTorch + SciPy peer (`experiments/peer.py`)")
  if not files:
    return
  out.append("Whole processes on ML-100K, back to back on one machine: "
             "start-up, data, compilation (train.py from an empty "
             "compilation cache), training and per-epoch evaluation.\n")
  for r in files:
    p, o = r.data["peer"], r.data["ours"]
    render(out, r, [table(
        ["run", "process seconds", "own seconds", "best RMSE",
         "evaluations", "note"],
        [["peer_torch.py", p["process_seconds"], p.get("seconds"),
          p.get("best_rmse"), p.get("evals"),
          "its seconds exclude imports and data loading"],
         ["train.py", o["process_seconds"], o["seconds"], o["best_rmse"],
          o["evaluations"],
          f"{o['optimizer']}, {o['plan']}: {o['train_seconds']:.1f}s "
          f"training, {o['evaluation_seconds']:.1f}s evaluating, "
          f"{o['compile_seconds']:.1f}s compiling"]]) + "\n",
        f"Speed-up of the whole process: {r.data['speedup']}x "
        f"({r.data.get('order', 'peer_first').replace('_', ' ')}).\n"])


def parse_section(out):
  """Loading large rating files (``experiments/parse_benchmark.py``)."""
  files = section(out, "parse_*.json", "Loading large rating files "
                  "(`experiments/parse_benchmark.py`)")
  if not files:
    return
  out.append("An ML-20M-format ratings.csv loaded by "
             "`glocal_jax.data.load_dataset(\"ml-20m\", DIR)`, each load in a "
             "fresh process: the first parses the text and writes the cache, "
             "the second reads the cache.\n")
  for r in files:
    d = r.data
    render(out, r, [
        f"{d['lines']} ratings, {d['file_bytes'] / 2**20:.0f} MiB of text.\n",
        table(["load", "seconds", "process seconds", "peak RSS GiB",
               "ratings"],
              [[name, load["seconds"], load["process_seconds"],
                round(load["peak_rss_bytes"] / 2**30, 2), load["ratings"]]
               for name, load in d["loads"].items()]) + "\n"]
           + (["The text parse alone (user, movie and rating columns into "
               "NumPy arrays), each reader in a fresh process, imports not "
               "timed:\n",
               table(["reader", "seconds", "peak RSS GiB", "ratings"],
                     [[name, p["seconds"],
                       round(p["peak_rss_bytes"] / 2**30, 2), p["ratings"]]
                      for name, p in d["parses"].items()]) + "\n"]
              if "parses" in d else []))


def tests_section(out):
  """How long the test suite takes (``experiments/time_tests.py``)."""
  for r in out.results("tests_*.json"):
    render(out, r, [f"`python -m pytest -q tests`: {r.data['summary']}, "
                    f"{r.data['seconds']:.0f} s in all.\n"])


def render_docs(path: str, report: Report) -> None:
  """Fills the ``<!-- results:NAME -->`` sections of ``path`` from
  ``report.rendered``."""
  with open(path) as f:
    text = f.read()

  # The rendered image links are relative to the repository's root; a file
  # in a folder of its own reaches them from there.
  up = os.path.relpath(ROOT, os.path.dirname(os.path.abspath(path)))
  relink = lambda line: (line if up == "." else
                         line.replace("](results/", f"]({up}/results/"))

  def fill(match):
    name = match.group(1)
    if name not in report.rendered:
      raise SystemExit(f"{path}: no result file {name}.json under "
                       f"{report.results_dir} for its section")
    return (f"<!-- results:{name} -->\n"
            + "\n".join(map(relink, report.rendered[name]))
            + f"\n<!-- /results:{name} -->")

  new = re.sub(r"<!-- results:([\w-]+) -->.*?<!-- /results:\1 -->", fill,
               text, flags=re.S)
  if new != text:
    with open(path, "w") as f:
      f.write(new)
    print(f"wrote {path}")


def write_results(results_dir: str, output: str, docs: list[str]) -> Report:
  """Renders every result file of ``results_dir`` into ``output`` (and the
  ``<!-- results:NAME -->`` sections of each existing file of ``docs``);
  returns the report."""
  out = Report(["# Results\n",
                "Generated by `python experiments/make_results.py` from the "
                "JSON files in `results/`; above each table, the command, "
                "commit and machine recorded in its file. Paper numbers are "
                "those of the CIKM'21 paper (Tables 1-2).\n"], results_dir)
  glance_section(out)
  suite_section(out)
  tune_section(out)
  training_section(out)
  benchmark_section(out)
  for name in SWEEPS:
    sweep_section(out, name)
  collapse_section(out)
  input_scale_section(out)
  scaling_section(out)
  peer_section(out)
  parse_section(out)
  if out.results("tests_*.json"):
    out.append("## The test suite (`experiments/time_tests.py`)\n")
    tests_section(out)
  with open(output, "w") as f:
    f.write("\n".join(out))
  print(f"wrote {output}")
  for path in docs:
    if os.path.exists(path):
      render_docs(path, out)
  return out


def main(argv):
  if len(argv) > 1:
    cli.fail(f"unexpected arguments {argv[1:]}")
  write_results(FLAGS.results_dir, FLAGS.output, FLAGS.docs)


if __name__ == "__main__":
  app.run(main)
