r"""The field's benchmark suite: GLocal-K, SparseFC and the mean predictors
on every data set the rating-only literature reports, both protocols.

  python experiments/suite.py --data_root=../shared/data --seeds=5 \
      --output_dir=DIR

Data sets (``--datasets``): ``ml-100k`` (u1, the paper's split),
``ml-100k-folds`` (u1..u5, each fold a row and their mean +- std over the
folds a row of its own), ``douban``, ``flixster``, ``yahoo_music`` and
``ml-1m`` (skipped when ``DATA_ROOT/ml-1m/ratings.dat`` is absent). Every
test set is evaluated whole (cold pairs by the fallback means, see
glocal_jax.baselines.fallback_predictions). GLocal-K and SparseFC train with
the data set's preset (or ``--config_json``); ``glocal-k-items+users``
averages each seed's item-based and user-based GLocal-K, each at its epoch
selected on validation (``--protocols=validation``; experiments/rows.py). Writes DIR/suite.json (rows,
the published numbers beside them with their sources, provenance),
DIR/suite.csv and, with matplotlib, DIR/suite.png.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import numpy as np

import cli  # pylint: disable=g-import-not-at-top
import reporting
import rows as table_rows

SUITE = ("ml-100k", "ml-100k-folds", "douban", "flixster", "yahoo_music",
         "ml-1m")
flags.DEFINE_list("models", ["glocal-k", "sparsefc", "global-mean",
                             "item-mean", "user-mean"],
                  f"Models, of {list(cli.ALL_MODELS)}.")
cli.define_sweep_flags()
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS
FLAGS.set_default("datasets", list(SUITE))

# Published test RMSE without side information unless marked, as facts from
# the papers: (model, value, uses side information, source).
GLOCAL_K_TABLE_1 = "Han et al. 2021 (GLocal-K), Table 1"
MONTI_SPLITS = "as collected in ../shared/data/README.md (IGMC, GC-MC papers)"
PUBLISHED = {
    "ml-100k": [("GLocal-K", 0.890, False, GLOCAL_K_TABLE_1),
                ("SparseFC", 0.895, False, GLOCAL_K_TABLE_1),
                ("IGMC", 0.905, False, GLOCAL_K_TABLE_1),
                ("GC-MC", 0.910, False, GLOCAL_K_TABLE_1),
                ("GC-MC+side", 0.905, True, GLOCAL_K_TABLE_1)],
    "ml-1m": [("GLocal-K", 0.822, False, GLOCAL_K_TABLE_1),
              ("SparseFC", 0.824, False, GLOCAL_K_TABLE_1),
              ("I-AutoRec", 0.831, False, GLOCAL_K_TABLE_1),
              ("GC-MC", 0.832, False, GLOCAL_K_TABLE_1),
              ("IGMC", 0.857, False, GLOCAL_K_TABLE_1)],
    "douban": [("GLocal-K", 0.721, False, GLOCAL_K_TABLE_1),
               ("IGMC", 0.721, False, GLOCAL_K_TABLE_1),
               ("SparseFC", 0.730, False, GLOCAL_K_TABLE_1),
               ("GC-MC+side", 0.734, True, GLOCAL_K_TABLE_1)],
    "flixster": [("IGMC", 0.872, False, MONTI_SPLITS),
                 ("GC-MC+side", 0.917, True, MONTI_SPLITS),
                 ("sRMGCNN", 0.926, False, MONTI_SPLITS)],
    "yahoo_music": [("IGMC", 19.1, False, MONTI_SPLITS),
                    ("GC-MC+side", 20.5, True, MONTI_SPLITS),
                    ("sRMGCNN", 22.4, False, MONTI_SPLITS)],
}
FOLDS = ("1", "2", "3", "4", "5")


def suite_data(entry: str):
  """Yields ``(dataset, fold, RatingData)`` of one ``--datasets`` entry;
  missing files skip the entry with a message."""
  name = "ml-100k" if entry == "ml-100k-folds" else entry
  data_dir = os.path.join(FLAGS.data_root, name) if FLAGS.data_root else None
  for fold in (FOLDS if entry == "ml-100k-folds" else
               ("1",) if entry == "ml-100k" else (None,)):
    data = cli.load(name, data_dir, skip_missing=True,
                    **({"fold": fold} if fold else {}))
    if data is None:
      return
    yield name, fold, data


def over_folds(fold_rows: list[dict]) -> dict:
  """The mean +- std over folds of the rows of one model and protocol
  (each fold's value is its mean over seeds)."""
  values = np.array([r["rmse_mean"] for r in fold_rows])
  return {**{k: v for k, v in fold_rows[0].items()
             if k in ("dataset", "entry", "model", "protocol", "seeds",
                      "device")},
          "fold": "1-5", "rmse_mean": float(values.mean()),
          "rmse_std": float(values.std()),
          "mae_mean": float(np.mean([r["mae_mean"] for r in fold_rows])),
          "ndcg_mean": float(np.mean([r["ndcg_mean"] for r in fold_rows])),
          "per_fold_rmse": values.tolist(),
          "seconds": round(sum(r["seconds"] for r in fold_rows), 1)}


def run_suite(entries: list[str], models: list[str], protocols: list[str],
              write) -> list[dict]:
  """Every row of the suite; ``write(rows)`` after each."""
  rows = []
  for entry in entries:
    by_model = {}
    for name, fold, data in suite_data(entry):
      for model in models:
        for protocol in protocols:
          row = table_rows.run_model_row(data, name, model, protocol,
                                         entry=entry, fold=fold)
          rows.append(row)
          by_model.setdefault((model, protocol), []).append(row)
          write(rows)
    if entry == "ml-100k-folds":
      rows.extend(over_folds(r) for r in by_model.values()
                  if len(r) == len(FOLDS))
      write(rows)
  return rows


def plot(path: str, rows: list[dict]) -> bool:
  """Per data set, test RMSE of each model and protocol (error bars: the
  std over seeds or folds) beside the published numbers. False without
  matplotlib."""
  plt = reporting.pyplot()
  if plt is None:
    return False
  panels = {}
  for row in rows:
    if row["entry"] == "ml-100k-folds" and row["fold"] != "1-5":
      continue  # the folds one by one are in the table
    title = row["dataset"] + (" (folds 1-5)" if row["fold"] == "1-5" else
                              "")
    panels.setdefault(title, []).append(
        (f"{row['model']} ({row['protocol']})", row["rmse_mean"],
         row.get("rmse_std", 0.0)))
  for title, bars in panels.items():
    dataset = title.split(" ")[0]
    bars.extend((f"{m}{' *' if side else ''} (published)", v, 0.0)
                for m, v, side, _ in PUBLISHED.get(dataset, []))
  fig, axes = plt.subplots(1, len(panels), squeeze=False,
                           figsize=(4.2 * len(panels), 4.8))
  for ax, (title, bars) in zip(axes[0], panels.items()):
    labels, values, errors = zip(*bars)
    colors = ["tab:gray" if "published" in label else "tab:blue"
              for label in labels]
    ax.barh(range(len(bars)), values, xerr=errors, color=colors)
    ax.set_yticks(range(len(bars)), labels, fontsize=7)
    ax.set_xlim(min(values) * 0.97, max(values) * 1.01)
    ax.set_title(title)
    ax.set_xlabel("test RMSE (* side information)")
    ax.invert_yaxis()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  print(f"wrote {path}")
  return True


def main(argv):
  cli.check_sweep_flags(argv, known=SUITE)
  cli.check_models(FLAGS.models)
  write = lambda rows: reporting.write_rows(FLAGS.output_dir, "suite", rows,
                                            published=PUBLISHED)
  rows = run_suite(FLAGS.datasets, FLAGS.models, FLAGS.protocols, write)
  if not rows:
    cli.none_found()
  plot(os.path.join(FLAGS.output_dir, "suite.png"), rows)


if __name__ == "__main__":
  app.run(main)
