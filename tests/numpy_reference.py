"""Independent NumPy implementations of GLocal-K, for the tests.

Written from docs/model.md with different arithmetic from the library where possible
(explicit loops, the direct squared distance of Eq. 2 where the library
expands it, a hand-rolled convolution).
"""

import numpy as np


def local_kernel(u, v):
  """Eq. 2 with the (n_in, n_out, d) difference tensor."""
  u = np.asarray(u).reshape(u.shape[0], 1, -1)
  v = np.asarray(v).reshape(1, v.shape[-2], -1)
  return np.maximum(0.0, 1.0 - ((u - v) ** 2).sum(-1))


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def autoencoder(layers, x, lambda_2=0.0, lambda_s=0.0, kernel=local_kernel):
  reg = 0.0
  for i, layer in enumerate(layers):
    w = np.asarray(layer["w"], np.float64)
    reg += lambda_2 * 0.5 * (w ** 2).sum()
    if "u" in layer:
      k = kernel(np.asarray(layer["u"], np.float64),
                 np.asarray(layer["v"], np.float64))
      reg += lambda_s * 0.5 * (k ** 2).sum()
      w = w * k
    x = x @ w + np.asarray(layer["b"], np.float64)
    if i < len(layers) - 1:
      x = sigmoid(x)
  return x, reg


def conv_same(x, kernel):
  """Cross-correlation with SAME zero padding, by explicit offsets."""
  t = kernel.shape[0]
  h = t // 2
  padded = np.pad(x, h)
  out = np.zeros_like(x, dtype=np.float64)
  for a in range(t):
    for b in range(t):
      out += kernel[a, b] * padded[a:a + x.shape[0], b:b + x.shape[1]]
  return out


def global_kernel(pooled, bank, dot_scale, aggregation):
  """``aggregation``: "weighted", "mean" or a NumPy function of
  (pooled, bank, dot_scale)."""
  t = int(round(np.sqrt(bank.shape[1])))
  if callable(aggregation):
    flat = aggregation(pooled, bank, dot_scale)
  elif aggregation == "weighted":
    flat = sum(pooled[i] * bank[i] for i in range(bank.shape[0])) * dot_scale
  else:
    flat = sum(bank[i] for i in range(bank.shape[0])) / bank.shape[0]
  return flat.reshape(t, t)


def average_pooling(predictions):
  return predictions.mean(axis=1)


def global_kernel_ratings(params, ratings, dot_scale, aggregation,
                          kernel=local_kernel, pooling=average_pooling):
  pooled = pooling(autoencoder(params["autoencoder"], ratings,
                               kernel=kernel)[0])
  x = ratings
  for bank in params["kernel_banks"]:
    gk = global_kernel(pooled, np.asarray(bank, np.float64), dot_scale,
                       aggregation)
    x = np.maximum(conv_same(x, gk), 0.0)
  return x


def pretrain_loss(layers, ratings, mask, lambda_2, lambda_s):
  pred, reg = autoencoder(layers, ratings, lambda_2, lambda_s)
  return 0.5 * ((mask * (ratings - pred)) ** 2).sum() + reg


def finetune_loss(params, ratings, mask, lambda_2, lambda_s, dot_scale,
                  aggregation, kernel=local_kernel, pooling=average_pooling):
  r_hat = global_kernel_ratings(params, ratings, dot_scale, aggregation,
                                kernel, pooling)
  pred, reg = autoencoder(params["autoencoder"], r_hat, lambda_2, lambda_s,
                          kernel)
  return 0.5 * ((mask * (ratings - pred)) ** 2).sum() + reg


def ndcg_loop(pred, target, mask):
  """The reference's per-user NDCG loop (stable sort, k = #test items)."""
  pred = np.clip(pred, 1.0, 5.0)
  total, count = 0.0, 0
  for j in range(target.shape[1]):
    items = np.nonzero(mask[:, j])[0]
    if items.size < 2:
      continue
    pairs = [(pred[i, j], target[i, j]) for i in items]
    by_pred = sorted(pairs, key=lambda d: d[0], reverse=True)
    by_label = sorted(pairs, key=lambda d: d[1], reverse=True)
    dcg = sum((2 ** s[1] - 1) / np.log2(2 + r) for r, s in enumerate(by_pred))
    idcg = sum((2 ** s[1] - 1) / np.log2(2 + r) for r, s in enumerate(by_label))
    total += dcg / idcg
    count += 1
  return total / count


def user_mean_rmse(train, test, low=1.0, high=5.0):
  """RMSE on the test ratings of each user's mean training rating (the
  global mean for a user without one), clipped to [low, high]. ``train``
  and ``test``: dense items x users arrays, 0 where unrated."""
  counts = (train > 0).sum(0)
  means = np.where(counts > 0, train.sum(0) / np.maximum(counts, 1),
                   train[train > 0].mean())
  err = (np.clip(np.broadcast_to(means, test.shape), low, high) - test)[
      test > 0]
  return np.sqrt(np.mean(err ** 2))
