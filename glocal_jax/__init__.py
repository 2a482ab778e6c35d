"""glocal_jax: GLocal-K (Han et al., CIKM 2021) in JAX.

Pure functions over plain parameter pytrees:

* kernels: :func:`local_kernel` (Eq. 2), :func:`kernelised_weight` (Eq. 3),
  :func:`item_average_pooling` (Eq. 4), :func:`global_kernel` (Eq. 5),
  :func:`global_conv` (Eq. 6);
* model: :func:`init_params`, :func:`kernel_layer`, :func:`autoencoder`
  (Eq. 1), :func:`global_kernel_ratings`, :func:`pretrain_loss`,
  :func:`finetune_loss`;
* metrics: :func:`rmse`, :func:`mae`, :func:`ndcg`;
* baselines: :func:`mean_predictions` (global, item or user mean);
* training with L-BFGS-B: :func:`train`, :class:`GLocalKConfig`,
  :func:`preset`;
* using a model: :func:`predict_pairs`, :func:`top_k_unrated`.

Data loaders live in :mod:`glocal_jax.data`, evaluated runs (both protocols,
vmapped seeds, checkpoints) in :mod:`glocal_jax.experiment`.
"""

from glocal_jax.baselines import mean_predictions
from glocal_jax.config import GLocalKConfig, PRESETS, preset
from glocal_jax.kernels import (global_conv, global_kernel,
                                item_average_pooling, kernelised_weight,
                                local_kernel)
from glocal_jax.metrics import evaluate, mae, ndcg, rmse
from glocal_jax.model import (autoencoder, finetune_loss, finetune_predictions,
                              global_kernel_ratings, init_layer, init_params,
                              kernel_layer, masked_squared_error,
                              pretrain_loss)
from glocal_jax.optim import (EpochStats, jaxopt_lbfgsb_epoch, lbfgsb_epoch,
                              scipy_lbfgsb_epoch)
from glocal_jax.recommend import predict_pairs, top_k_unrated
from glocal_jax.training import (EpochRecord, NonFiniteError, TrainResult,
                                 make_epoch_fns, predictions, train)

__version__ = "0.1.0"
