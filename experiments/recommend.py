r"""Top-k recommendations for one user from a training checkpoint.

  python experiments/recommend.py --checkpoint_dir=/tmp/ckpt --user=42 --k=10

Prints the user's k unrated items with the highest predicted ratings
(raw item ids, ratings clipped to [1, 5]).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import jax.numpy as jnp
import numpy as np

import common  # pylint: disable=g-import-not-at-top
import glocal_jax as gj
from glocal_jax import checkpoint, recommend, training

flags.DEFINE_string("checkpoint_dir", None, "Folder of a training checkpoint.")
flags.DEFINE_integer("user", None, "Raw user id (as in the rating file).")
flags.DEFINE_integer("k", 10, "Number of items.")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    common.fail(f"unexpected arguments {argv[1:]}")
  if not FLAGS.checkpoint_dir or FLAGS.user is None:
    common.fail("--checkpoint_dir and --user are required")
  if FLAGS.k <= 0:
    common.fail(f"--k must be positive, got {FLAGS.k}")
  try:
    ckpt = checkpoint.load(FLAGS.checkpoint_dir)
  except ValueError as e:
    common.fail(str(e))
  if ckpt is None:
    common.fail(f"no checkpoint in {FLAGS.checkpoint_dir}; train with "
                "experiments/train.py --checkpoint_dir first")
  arrays = ckpt.arrays
  user_ids = arrays["user_ids"]
  column = np.searchsorted(user_ids, FLAGS.user)
  if column >= user_ids.size or user_ids[column] != FLAGS.user:
    common.fail(f"unknown user id {FLAGS.user}; the checkpoint knows "
                f"{user_ids.size} users with ids {user_ids.min()}.."
                f"{user_ids.max()}")
  shape = tuple(int(x) for x in arrays["shape"])
  ratings = gj.Ratings(arrays["train_rows"], arrays["train_cols"],
                       arrays["train_values"], shape)
  rated = np.zeros(shape[0], bool)
  rated[ratings.items[ratings.users == column]] = True
  unrated = int((~rated).sum())
  k = min(FLAGS.k, unrated)
  config = gj.GLocalKConfig(**ckpt.meta["config"])
  scores = training.predict(config, ckpt.params,
                            training.prepare(config, ratings),
                            jnp.arange(shape[0]), jnp.full(shape[0], column),
                            ckpt.meta["phase"])
  items, scores = recommend.top_k_unrated(scores, rated, k)
  print(f"user {FLAGS.user}: top {k} of {unrated} unrated items "
        f"(model after {ckpt.meta['phase']} epoch {ckpt.meta['epoch']})")
  for rank, (item, score) in enumerate(zip(np.asarray(items),
                                           np.asarray(scores)), 1):
    print(f"{rank}\titem {arrays['item_ids'][item]}\t{score:.3f}")


if __name__ == "__main__":
  app.run(main)
