"""glocal_jax: GLocal-K (Han et al., CIKM 2021) in JAX.

Pure functions over plain parameter pytrees:

* kernels: :func:`local_kernel` (Eq. 2), :func:`kernelised_weight` (Eq. 3),
  :func:`item_average_pooling` (Eq. 4), :func:`global_kernel` (Eq. 5),
  :func:`global_conv` (Eq. 6);
* model (the dense reference on ``(m, n)`` matrices): :func:`init_params`,
  :func:`kernel_layer`, :func:`autoencoder` (Eq. 1), :func:`encode`,
  :func:`decode`, :func:`pooled_predictions`, :func:`global_kernel_ratings`,
  :func:`pretrain_loss`, :func:`finetune_loss`;
* the ratings pytree :class:`Ratings` and the same losses on it, with
  memory that grows with the ratings: :mod:`glocal_jax.representations`
  (dense, blocked and sparse formulations);
* metrics on rating triplets: :func:`rmse`, :func:`mae`, :func:`ndcg`;
* baselines: :func:`mean_predictions` (global, item or user mean);
* training with L-BFGS-B: :func:`train`, :func:`prepare`, :func:`predict`,
  :class:`GLocalKConfig`, :func:`preset`;
* using a model: :func:`top_k_unrated`.

Data loaders live in :mod:`glocal_jax.data`, evaluated runs (both protocols,
vmapped seeds, checkpoints) in :mod:`glocal_jax.experiment`.
"""

from glocal_jax.baselines import mean_predictions
from glocal_jax.config import GLocalKConfig, PRESETS, preset
from glocal_jax.kernels import (global_conv, global_kernel,
                                item_average_pooling, kernelised_weight,
                                local_kernel)
from glocal_jax.metrics import evaluate, mae, ndcg, rmse
from glocal_jax.model import (autoencoder, decode, encode, finetune_loss,
                              finetune_predictions, global_kernel_ratings,
                              init_layer, init_params, kernel_layer,
                              kernelised_layers, masked_squared_error,
                              pooled_predictions, pretrain_loss)
from glocal_jax.optim import (EpochStats, jaxopt_lbfgsb_epoch, lbfgsb_epoch,
                              scipy_lbfgsb_epoch)
from glocal_jax.ratings import Ratings
from glocal_jax.recommend import top_k_unrated
from glocal_jax.representations import Plan, TrainingData
from glocal_jax.training import (EpochRecord, NonFiniteError, TrainResult,
                                 make_epoch_fns, predict, prepare, train)

__version__ = "0.1.0"
