"""Result files and figures of the experiment scripts.

JSON is written atomically (a temporary file in the same folder, then a
rename) and is always standard JSON: a non-finite number (NaN, inf) is
written as null and its path and value are listed under ``"nulls"``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Callable

import jax

from provenance import provenance


def _finite(obj, path: str, nulls: dict):
  """``obj`` with non-finite floats replaced by None (recorded in nulls)."""
  if isinstance(obj, float) and not math.isfinite(obj):
    nulls[path] = str(obj)
    return None
  if isinstance(obj, dict):
    return {k: _finite(v, f"{path}/{k}", nulls) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_finite(v, f"{path}/{i}", nulls) for i, v in enumerate(obj)]
  return obj


def write_json(path: str, obj) -> dict:
  """Writes ``obj`` as standard JSON atomically; returns the nulls written
  for non-finite numbers (``{json path: "nan"}``), also stored in a dict
  ``obj`` under ``"nulls"``."""
  nulls = {}
  obj = _finite(obj, "", nulls)
  if nulls and isinstance(obj, dict):
    obj["nulls"] = {p: f"not a finite number ({v})" for p, v in nulls.items()}
  if jax.process_index() != 0:  # several processes: process 0 writes
    return nulls
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp-{os.getpid()}"
  try:
    with open(tmp, "w") as f:
      json.dump(obj, f, indent=1, allow_nan=False)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return nulls


def write_rows(output_dir: str, name: str, rows: list[dict],
               **extra) -> None:
  """Writes ``output_dir/name.json`` (the rows, ``extra`` and this run's
  provenance) and ``name.csv`` (the first row's scalar columns)."""
  write_json(os.path.join(output_dir, f"{name}.json"),
             {"provenance": provenance(), "rows": rows, **extra})
  if not rows or jax.process_index() != 0:
    return
  write_csv(os.path.join(output_dir, f"{name}.csv"), rows)
  print(f"wrote {output_dir}/{name}.json and .csv")


def write_csv(path: str, rows: list[dict]) -> str:
  """``rows`` as CSV (the first row's scalar columns; None as empty), moved
  into place whole; returns ``path``."""
  columns = [k for k in rows[0] if not isinstance(rows[0][k], (dict, list))]
  tmp = os.path.join(os.path.dirname(path) or ".",
                     f".{os.path.basename(path)}.tmp")
  with open(tmp, "w", newline="") as f:
    writer = csv.writer(f)  # quotes fields with commas ("3x3, 1 layer")
    writer.writerow(columns)
    for row in rows:
      writer.writerow(["" if row.get(c) is None else row.get(c)
                       for c in columns])
  os.replace(tmp, path)
  return path


def pyplot():
  """matplotlib's pyplot with the Agg backend, or None: in a process that
  does not write (several processes: process 0 writes), or (with a
  message) when matplotlib is not installed."""
  if jax.process_index() != 0:
    return None
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError:
    print("matplotlib is not installed (pip install -e '.[plot]'); no PNG.")
    return None
  return plt


def plot_rows(path: str, rows: list[dict], x: str,
              label: Callable[[dict], str]) -> bool:
  """Test RMSE (``rmse_mean``, with ``rmse_std`` as error bars) against
  ``row[x]`` as a PNG at ``path``: one panel per dataset, one line per
  ``label(row)``. False when matplotlib is not installed."""
  plt = pyplot()
  if plt is None:
    return False
  panels = {}
  for row in rows:
    xs, ys, stds = panels.setdefault(row["dataset"], {}).setdefault(
        label(row), ([], [], []))
    xs.append(row[x])
    ys.append(row["rmse_mean"])
    stds.append(row.get("rmse_std", 0.0))
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


def plot_glance(path: str, rows: dict[str, dict[str, dict]],
                means: dict[str, float], labels: list[str]) -> bool:
  """Each data set's test RMSE (``rows[dataset][label]``: a row with
  ``rmse_mean`` and ``rmse_std``; one bar per ``labels`` entry it has)
  over its best mean predictor's (``means[dataset]``), so that data sets
  on different scales share one axis; a PNG at ``path``. False when
  matplotlib is not installed."""
  plt = pyplot()
  if plt is None:
    return False
  fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(rows), 3.8))
  width = 0.8 / max(len(labels), 1)
  for j, label in enumerate(labels):
    xs, ys, errs = [], [], []
    for i, (dataset, found) in enumerate(rows.items()):
      if label in found and dataset in means:
        xs.append(i + (j - (len(labels) - 1) / 2) * width)
        ys.append(found[label]["rmse_mean"] / means[dataset])
        errs.append((found[label].get("rmse_std") or 0.0) / means[dataset])
    ax.bar(xs, ys, width, yerr=errs, capsize=2, label=label)
  ax.axhline(1.0, color="gray", linestyle=":", label="best mean predictor")
  ax.set_xticks(range(len(rows)), list(rows), fontsize=8)
  ax.set_ylabel("test RMSE / best mean predictor's")
  lows = [f["rmse_mean"] / means[d] for d, r in rows.items() if d in means
          for f in r.values()]
  ax.set_ylim(min(lows + [1.0]) - 0.05, 1.02)
  ax.grid(alpha=0.3, axis="y")
  ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12),
            ncol=3)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  print(f"wrote {path}")
  return True
