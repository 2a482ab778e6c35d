r"""Top-k recommendations for one user from a training checkpoint.

  python experiments/recommend.py --checkpoint_dir=/tmp/ckpt --user=42 --k=10

Prints the user's k unrated items with the highest predicted ratings
(the data's own item ids and their titles where the run saved them, e.g.
ML-100K's u.item, or --items_file; ratings clipped to the data's rating
scale), from the epoch selected on validation when the run had a
validation split (--epoch=last: the last one). An item the user rated in
any split of the run (training, validation, test) counts as rated. What
the run's diagnosis found in that model (a collapse, a model no better than
a mean predictor) is printed first, as a warning.
--checkpoint_dir may also be train.py's OUTPUT_DIR.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import glocal_jax as gj
from glocal_jax import data as gdata

import cli  # pylint: disable=g-import-not-at-top

flags.DEFINE_string("checkpoint_dir", None, "Folder of a training checkpoint "
                    "(or train.py's OUTPUT_DIR).")
flags.DEFINE_string("user", None, "User id, as in the rating file.")
flags.DEFINE_integer("k", 10, "Number of items.", lower_bound=1)
flags.DEFINE_enum("epoch", "selected", ["selected", "last"],
                  "Recommend from the epoch selected on validation (when the "
                  "run had a validation split) or from the last one.")
flags.DEFINE_string("items_file", None, "Item names: a file of item id and "
                    "name per line (default: the titles the run saved, e.g. "
                    "ML-100K's u.item).")
FLAGS = flags.FLAGS


def recommend(checkpoint_dir: str, user: str, k: int, epoch: str = "selected",
              items_file: str | None = None) -> list[str]:
  """The lines recommend.py prints; raises what load_model and
  TrainedModel.recommend raise."""
  model = gj.load_model(checkpoint_dir, epoch=epoch)
  if items_file:
    try:
      model.item_titles = gdata.title_array(model.item_ids, items_file)
    except OSError as e:  # not the checkpoint's FileNotFoundError below
      raise ValueError(f"--items_file={items_file}: cannot read it "
                       f"({e.strerror or e}).") from None
  lines = [f"warning: {problem}"
           for problem in [*model.damaged, *model.warnings]]
  top = model.recommend(user, k)
  unrated = int((~model.rated(int(model.user_index([user])[0]))).sum())
  lines.append(f"user {user}: top {len(top)} of {unrated} unrated items "
               f"(model after {model.phase} epoch {model.epoch})")
  for rank, (item, score) in enumerate(top, 1):
    title = model.title(item)
    lines.append(f"{rank}\titem {item}\t{score:.3f}"
                 + (f"\t{title}" if title else ""))
  return lines


def main(argv):
  if len(argv) > 1:
    cli.fail(f"unexpected arguments {argv[1:]}")
  if not FLAGS.checkpoint_dir or FLAGS.user is None:
    cli.fail("--checkpoint_dir and --user are required")
  try:
    lines = recommend(FLAGS.checkpoint_dir, FLAGS.user, FLAGS.k, FLAGS.epoch,
                      FLAGS.items_file)
  except FileNotFoundError as e:
    cli.fail(f"{e} Train with experiments/train.py first (it writes "
             "OUTPUT_DIR/checkpoint).")
  except (ValueError, KeyError) as e:
    cli.fail(str(e))
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
