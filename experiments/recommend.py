r"""Top-k recommendations for one user from a training checkpoint.

  python experiments/recommend.py --checkpoint_dir=/tmp/ckpt --user=42 --k=10

Prints the user's k unrated items with the highest predicted ratings
(the data's own item ids, ratings clipped to the data's rating scale). An
item the user rated in any split of the run (training, validation, test)
counts as rated. --checkpoint_dir may also be train.py's OUTPUT_DIR.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import jax.numpy as jnp
import numpy as np

import cli  # pylint: disable=g-import-not-at-top
import glocal_jax as gj
from glocal_jax import checkpoint, recommend, training
from glocal_jax import data as gdata

flags.DEFINE_string("checkpoint_dir", None, "Folder of a training checkpoint.")
flags.DEFINE_string("user", None, "User id, as in the rating file.")
flags.DEFINE_integer("k", 10, "Number of items.")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    cli.fail(f"unexpected arguments {argv[1:]}")
  if not FLAGS.checkpoint_dir or FLAGS.user is None:
    cli.fail("--checkpoint_dir and --user are required")
  if FLAGS.k <= 0:
    cli.fail(f"--k must be positive, got {FLAGS.k}")
  try:
    ckpt = checkpoint.load(FLAGS.checkpoint_dir)
    inner = os.path.join(FLAGS.checkpoint_dir, "checkpoint")
    if ckpt is None and os.path.isdir(inner):  # train.py's OUTPUT_DIR given
      ckpt = checkpoint.load(inner)
      print(f"using the checkpoint in {inner}")
  except ValueError as e:
    cli.fail(str(e))
  if ckpt is None:
    cli.fail(f"no checkpoint in {FLAGS.checkpoint_dir}; train with "
             "experiments/train.py first (it writes OUTPUT_DIR/checkpoint)")
  for problem in ckpt.damaged:
    print(f"warning: {problem}; using {ckpt.path}")
  arrays = ckpt.arrays
  user_ids = arrays["user_ids"]
  try:
    user = (FLAGS.user.encode() if user_ids.dtype.kind == "S"
            else int(FLAGS.user))
  except ValueError:
    user = None
  column = np.searchsorted(user_ids, user) if user is not None else 0
  if user is None or column >= user_ids.size or user_ids[column] != user:
    show = lambda x: x.decode() if isinstance(x, bytes) else str(x)
    cli.fail(f"unknown user id {FLAGS.user}; the checkpoint knows "
             f"{user_ids.size} users with ids {show(user_ids[0])} .. "
             f"{show(user_ids[-1])} (in sorted order)")
  shape = tuple(int(x) for x in arrays["shape"])
  ratings = gj.Ratings(arrays["train_rows"], arrays["train_cols"],
                       arrays["train_values"], shape)
  # Items the user rated in any split (training, validation or test) are
  # not recommended again.
  rated = np.zeros(shape[0], bool)
  for split in ("train", "valid", "test"):
    if f"{split}_rows" in arrays:
      rows, cols = arrays[f"{split}_rows"], arrays[f"{split}_cols"]
      rated[rows[cols == column]] = True
  unrated = int((~rated).sum())
  k = min(FLAGS.k, unrated)
  config = gj.GLocalKConfig(**ckpt.meta["config"])
  scale = (gdata.RatingScale(*(float(x) for x in arrays["scale"]))
           if "scale" in arrays else gdata.STARS)
  every_item, the_user = jnp.arange(shape[0]), jnp.full(shape[0], column)
  if config.orientation == "users":  # the model's rows are the users
    ratings = gj.ratings.transpose(ratings)
    every_item, the_user = the_user, every_item
  scores = scale.from_model(training.predict(
      config, ckpt.params,
      training.prepare(config, scale.to_model_ratings(ratings)),
      every_item, the_user, ckpt.meta["phase"]))
  items, scores = recommend.top_k_unrated(scores, rated, k, scale.low,
                                          scale.high)
  print(f"user {FLAGS.user}: top {k} of {unrated} unrated items "
        f"(model after {ckpt.meta['phase']} epoch {ckpt.meta['epoch']})")
  for rank, (item, score) in enumerate(zip(np.asarray(items),
                                           np.asarray(scores)), 1):
    item_id = arrays["item_ids"][item]
    item_id = item_id.decode() if isinstance(item_id, bytes) else item_id
    print(f"{rank}\titem {item_id}\t{score:.3f}")


if __name__ == "__main__":
  app.run(main)
