"""The kernelised autoencoder of GLocal-K and its two losses.

Parameters are plain pytrees::

    params = {
        "autoencoder": [layer, ...],     # hidden layers, then the output layer
        "kernel_banks": [bank, ...],     # (m, t*t), one per global conv layer
    }
    layer = {"w": (n_in, n_out), "b": (n_out,),
             "u": (n_in, 1, d), "v": (1, n_out, d)}   # u, v: local kernel

A layer without ``"u"``/``"v"`` is a plain dense layer (I-AutoRec).
Pre-training optimises ``params["autoencoder"]`` only; fine-tuning optimises
the whole pytree.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp

from glocal_jax import kernels
from glocal_jax.kernels import AggregationFn
from glocal_jax.kernels import LocalKernelFn
from glocal_jax.kernels import PoolingFn

Layer = dict[str, jax.Array]
Params = dict[str, Any]


def _glorot_uniform(key: jax.Array, shape: tuple[int, ...], fan_in: int,
                    fan_out: int, dtype) -> jax.Array:
  limit = (6.0 / (fan_in + fan_out)) ** 0.5
  return jax.random.uniform(key, shape, dtype, -limit, limit)


def _truncated_normal(key: jax.Array, shape: tuple[int, ...], std: float,
                      dtype) -> jax.Array:
  return std * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)


def init_layer(key: jax.Array, n_in: int, n_out: int, n_dim: int = 5,
               local_kernel: bool = True, dtype=jnp.float32) -> Layer:
  """Initialises one (kernel) layer as the reference TF code does.

  ``w`` and ``b`` are Glorot-uniform (TF's default for ``get_variable``; for
  the 1-D bias both fans are ``n_out``, so its limit is ``sqrt(3 / n_out)``);
  ``u`` and ``v`` are truncated normal (cut at 2 std) with std 1e-3.

  Args:
    key: PRNG key.
    n_in: input size.
    n_out: output size.
    n_dim: dimension ``d`` of the kernel embeddings ``u_i``, ``v_j``.
    local_kernel: when False the layer has no ``u``/``v`` (dense layer).
    dtype: parameter dtype.

  Returns:
    ``{"w": (n_in, n_out), "b": (n_out,), "u": (n_in, 1, d),
    "v": (1, n_out, d)}``.
  """
  kw, kb, ku, kv = jax.random.split(key, 4)
  layer = {
      "w": _glorot_uniform(kw, (n_in, n_out), n_in, n_out, dtype),
      "b": _glorot_uniform(kb, (n_out,), n_out, n_out, dtype),
  }
  if local_kernel:
    layer["u"] = _truncated_normal(ku, (n_in, 1, n_dim), 1e-3, dtype)
    layer["v"] = _truncated_normal(kv, (1, n_out, n_dim), 1e-3, dtype)
  return layer


def init_params(key: jax.Array, n_items: int, n_users: int,
                hidden: Sequence[int] = (500, 500), n_dim: int = 5,
                kernel_size: int = 3, conv_layers: int = 1,
                local_kernel: bool = True, dtype=jnp.float32) -> Params:
  """Initialises all GLocal-K parameters from one PRNG key.

  Args:
    key: PRNG key.
    n_items: ``m``, rows of the rating matrix (one AE sample per item).
    n_users: ``n``, columns of the rating matrix (AE input/output size).
    hidden: hidden layer sizes (paper: two layers of 500).
    n_dim: local kernel embedding dimension (paper: 5).
    kernel_size: global kernel size ``t`` (odd; paper: 3).
    conv_layers: number of stacked global convolutions (paper: 1).
    local_kernel: False gives plain dense layers (I-AutoRec).
    dtype: parameter dtype.

  Returns:
    ``{"autoencoder": [layer] * (len(hidden) + 1),
    "kernel_banks": [(n_items, t*t)] * conv_layers}``; banks are truncated
    normal with std 0.1.
  """
  sizes = [n_users, *hidden, n_users]
  keys = jax.random.split(key, len(sizes) - 1 + conv_layers)
  layers = [
      init_layer(k, n_in, n_out, n_dim, local_kernel, dtype)
      for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:])
  ]
  banks = [
      _truncated_normal(k, (n_items, kernel_size * kernel_size), 0.1, dtype)
      for k in keys[len(layers):]
  ]
  return {"autoencoder": layers, "kernel_banks": banks}


def kernelised_layers(layers: Sequence[Layer],
                      lambda_2: float | jax.Array = 0.0,
                      lambda_s: float | jax.Array = 0.0,
                      local_kernel: LocalKernelFn = kernels.local_kernel
                      ) -> tuple[list[Layer], jax.Array]:
  """Each layer's kernelised weights, paper Eq. (3), and the regulariser.

  Computed once per loss evaluation, outside any loop over items: the
  layers that :func:`encode` and :func:`decode` take.

  Args:
    layers: ``[{"w": (n_in, n_out), "b": (n_out,)}, ...]``, each with
      optional local-kernel embeddings ``"u": (n_in, 1, d)``,
      ``"v": (1, n_out, d)``.
    lambda_2: L2 penalty on ``W``.
    lambda_s: L2 penalty on the kernel matrices ``K``.
    local_kernel: ``K(U, V)`` (default: the paper's Eq. 2,
      :func:`glocal_jax.kernels.local_kernel`); any function of its
      signature, e.g. a Gaussian RBF.

  Returns:
    ``(dense_layers, reg)``: ``[{"w": W * K(U, V), "b": b}, ...]`` (``W``
    itself for a layer without ``u``/``v``), and the scalar
    ``sum_layers lambda_s * sum(K^2) / 2 + lambda_2 * sum(W^2) / 2``.
  """
  dense, reg = [], 0.0
  for layer in layers:
    w = layer["w"]
    reg = reg + lambda_2 * jnp.sum(jnp.square(w)) / 2
    if "u" in layer:
      k = local_kernel(layer["u"], layer["v"])
      reg = reg + lambda_s * jnp.sum(jnp.square(k)) / 2
      w = w * k
    dense.append({"w": w, "b": layer["b"]})
  return dense, reg


def kernel_layer(layer: Layer, x: jax.Array, activation=jax.nn.sigmoid,
                 lambda_2: float | jax.Array = 0.0,
                 lambda_s: float | jax.Array = 0.0,
                 local_kernel: LocalKernelFn = kernels.local_kernel
                 ) -> tuple[jax.Array, jax.Array]:
  """One kernel layer: ``y = act(x @ (W * K(U, V)) + b)``, Eqs. (1)-(3).

  Args:
    layer: ``{"w": (n_in, n_out), "b": (n_out,)}`` plus optional
      ``"u": (n_in, 1, d)``, ``"v": (1, n_out, d)``.
    x: ``(batch, n_in)`` inputs.
    activation: elementwise non-linearity.
    lambda_2: L2 penalty on ``W``.
    lambda_s: L2 penalty on the kernel matrix ``K``.
    local_kernel: ``K(U, V)`` (default: Eq. 2).

  Returns:
    ``(y, reg)``: ``(batch, n_out)`` outputs and the scalar regulariser
    ``lambda_s * sum(K^2) / 2 + lambda_2 * sum(W^2) / 2``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> from glocal_jax import model
    >>> layer = model.init_layer(jax.random.PRNGKey(0), 4, 3)
    >>> y, reg = model.kernel_layer(layer, jnp.ones((2, 4)), lambda_2=1.0)
    >>> y.shape, bool(reg > 0)
    ((2, 3), True)
  """
  (dense,), reg = kernelised_layers([layer], lambda_2, lambda_s,
                                    local_kernel)
  return activation(x @ dense["w"] + dense["b"]), reg


def finish_encoding(dense_layers: Sequence[Layer],
                    pre_activation: jax.Array) -> jax.Array:
  """The last hidden layer from the first layer's pre-activation.

  Args:
    dense_layers: kernelised layers (:func:`kernelised_layers`).
    pre_activation: ``(batch, hidden[0])``, ``x @ W_1' + b_1``.

  Returns:
    ``(batch, hidden[-1])`` sigmoid activations of the last hidden layer.
  """
  h = jax.nn.sigmoid(pre_activation)
  for layer in dense_layers[1:-1]:
    h = jax.nn.sigmoid(h @ layer["w"] + layer["b"])
  return h


def encode(dense_layers: Sequence[Layer], x: jax.Array) -> jax.Array:
  """The autoencoder's hidden code ``H_L`` of ``x (batch, n_users)``.

  Every layer but the output one, with sigmoid activations (Eq. 1);
  ``dense_layers`` come from :func:`kernelised_layers`. With no hidden
  layer (a single output layer) the code is ``x`` itself.
  """
  if len(dense_layers) == 1:
    return x
  first = dense_layers[0]
  return finish_encoding(dense_layers, x @ first["w"] + first["b"])


def decode(dense_layer: Layer, h: jax.Array) -> jax.Array:
  """The output layer (identity activation): ``(batch, h) -> (batch, n)``."""
  return h @ dense_layer["w"] + dense_layer["b"]


def pooled_predictions(dense_layer: Layer, h: jax.Array) -> jax.Array:
  """Item average pooling (Eq. 4) of ``decode(dense_layer, h)``, exactly.

  The output layer is linear, so ``mean_j (H W' + b)_ij = H_i .
  mean_j W'[:, j] + mean_j b_j``: ``O(batch * h)`` work and no
  ``(batch, n)`` output.

  Args:
    dense_layer: the kernelised output layer.
    h: ``(batch, h)`` hidden code.

  Returns:
    ``(batch,)`` one summary per item.
  """
  return h @ jnp.mean(dense_layer["w"], axis=1) + jnp.mean(dense_layer["b"])


def item_summaries(dense_layer: Layer, h: jax.Array,
                   pooling: PoolingFn = kernels.item_average_pooling
                   ) -> jax.Array:
  """Eq. 4's summary of each item's predictions ``decode(dense_layer, h)``.

  The paper's mean (:func:`glocal_jax.kernels.item_average_pooling`, the
  default) by :func:`pooled_predictions`, without the ``(batch, n)``
  predictions; any other pooling function on the predictions themselves.

  Args:
    dense_layer: the kernelised output layer.
    h: ``(batch, h)`` hidden code.
    pooling: ``pool((batch, n)) -> (batch,)``.

  Returns:
    ``(batch,)`` one summary per item.
  """
  if pooling is kernels.item_average_pooling:
    return pooled_predictions(dense_layer, h)
  return pooling(decode(dense_layer, h))


def autoencoder(layers: Sequence[Layer], x: jax.Array,
                lambda_2: float | jax.Array = 0.0,
                lambda_s: float | jax.Array = 0.0,
                local_kernel: LocalKernelFn = kernels.local_kernel
                ) -> tuple[jax.Array, jax.Array]:
  """Item-based kernelised autoencoder forward pass, paper Eq. (1).

  Sigmoid hidden layers, identity output layer:
  ``decode(encode(x))`` of the :func:`kernelised_layers`.

  Args:
    layers: hidden layers then output layer (see :func:`kernel_layer`).
    x: ``(m, n)`` items x users input matrix.
    lambda_2: L2 penalty on the weights.
    lambda_s: L2 penalty on the local kernels.
    local_kernel: ``K(U, V)`` (default: Eq. 2).

  Returns:
    ``(predictions, reg)``: ``(m, n)`` reconstruction and the sum of the
    layers' regularisers.
  """
  dense, reg = kernelised_layers(layers, lambda_2, lambda_s, local_kernel)
  return decode(dense[-1], encode(dense, x)), reg


def global_kernel_ratings(params: Params, ratings: jax.Array,
                          dot_scale: float | jax.Array = 1.0,
                          aggregation: str | AggregationFn = "weighted",
                          local_kernel: LocalKernelFn = kernels.local_kernel,
                          pooling: PoolingFn = kernels.item_average_pooling
                          ) -> jax.Array:
  """The global kernel-based rating matrix ``R_hat``, paper Eqs. (4)-(6).

  ``mu = pool(AE(R))`` (Eq. 4: the average by default); for each kernel
  bank in turn,
  ``R <- relu(R (*) GK(mu, bank))``. Gradients flow through ``AE(R)``.

  Args:
    params: full parameter pytree (see module docstring).
    ratings: ``(m, n)`` training rating matrix.
    dot_scale: scale of the weighted kernel aggregation.
    aggregation: ``"weighted"`` (paper), ``"mean"`` (Table 2) or a
      function (:func:`glocal_jax.kernels.global_kernel`).
    local_kernel: ``K(U, V)`` (default: Eq. 2).
    pooling: ``pool((m, n)) -> (m,)``, Eq. 4 (default: the item average,
      :func:`glocal_jax.kernels.item_average_pooling`).

  Returns:
    ``(m, n)`` matrix fed to the autoencoder during fine-tuning.
  """
  pooled = pooling(autoencoder(params["autoencoder"], ratings,
                               local_kernel=local_kernel)[0])
  x = ratings
  for bank in params["kernel_banks"]:
    x = kernels.global_conv(
        x, kernels.global_kernel(pooled, bank, dot_scale, aggregation))
  return x


def finetune_predictions(params: Params, ratings: jax.Array,
                         dot_scale: float | jax.Array = 1.0,
                         aggregation: str | AggregationFn = "weighted",
                         local_kernel: LocalKernelFn = kernels.local_kernel,
                         pooling: PoolingFn = kernels.item_average_pooling
                         ) -> jax.Array:
  """GLocal-K's predictions ``AE(R_hat)``, ``(m, n)`` (unclipped)."""
  r_hat = global_kernel_ratings(params, ratings, dot_scale, aggregation,
                                local_kernel, pooling)
  return autoencoder(params["autoencoder"], r_hat,
                     local_kernel=local_kernel)[0]


def masked_squared_error(predictions: jax.Array, targets: jax.Array,
                         mask: jax.Array) -> jax.Array:
  """``sum((mask * (targets - predictions))^2) / 2`` (TF's ``l2_loss``)."""
  return jnp.sum(jnp.square(mask * (targets - predictions))) / 2


def pretrain_loss(layers: Sequence[Layer], ratings: jax.Array,
                  mask: jax.Array, lambda_2: float | jax.Array,
                  lambda_s: float | jax.Array,
                  local_kernel: LocalKernelFn = kernels.local_kernel
                  ) -> jax.Array:
  """Pre-training loss ``L_p = ||M * (R - AE(R))||^2 / 2 + reg``.

  Args:
    layers: ``params["autoencoder"]``.
    ratings: ``(m, n)`` training ratings (0 = unrated).
    mask: ``(m, n)`` training mask (1 where rated).
    lambda_2: L2 penalty on the weights.
    lambda_s: L2 penalty on the local kernels.
    local_kernel: ``K(U, V)`` (default: Eq. 2).

  Returns:
    scalar loss.
  """
  predictions, reg = autoencoder(layers, ratings, lambda_2, lambda_s,
                                 local_kernel)
  return masked_squared_error(predictions, ratings, mask) + reg


def finetune_loss(params: Params, ratings: jax.Array, mask: jax.Array,
                  lambda_2: float | jax.Array, lambda_s: float | jax.Array,
                  dot_scale: float | jax.Array = 1.0,
                  aggregation: str | AggregationFn = "weighted",
                  local_kernel: LocalKernelFn = kernels.local_kernel,
                  pooling: PoolingFn = kernels.item_average_pooling
                  ) -> jax.Array:
  """Fine-tuning loss ``L_f = ||M * (R - AE(R_hat))||^2 / 2 + reg``.

  ``R_hat`` (Eq. 6) is recomputed from the current parameters at every call.

  Args:
    params: full parameter pytree.
    ratings: ``(m, n)`` training ratings.
    mask: ``(m, n)`` training mask.
    lambda_2: L2 penalty on the weights.
    lambda_s: L2 penalty on the local kernels.
    dot_scale: scale of the weighted kernel aggregation.
    aggregation: ``"weighted"``, ``"mean"`` or a function
      (:func:`glocal_jax.kernels.global_kernel`).
    local_kernel: ``K(U, V)`` (default: Eq. 2).
    pooling: Eq. 4's item summary (default: the average).

  Returns:
    scalar loss.
  """
  r_hat = global_kernel_ratings(params, ratings, dot_scale, aggregation,
                                local_kernel, pooling)
  predictions, reg = autoencoder(params["autoencoder"], r_hat, lambda_2,
                                 lambda_s, local_kernel)
  return masked_squared_error(predictions, ratings, mask) + reg
