"""Rating data sets: the paper's, the large public releases, your own files.

Every loader returns a :class:`RatingData`: train and test
:class:`~glocal_jax.ratings.Ratings` (sorted items x users triplets, never a
dense matrix), the raw ids of the rows and columns, and the rating scale.
Loaders take a directory; missing files raise :class:`MissingDataError`
saying how to get them, or are downloaded (and checksum-verified where the
checksum is known) with ``download=True``.

* ``ml-100k`` (``u1.base``/``u1.test``, the paper's; the other folds and
  ``u.data`` with ``fold=``), ``ml-1m``, ``ml-10m``
  (``ratings.dat``), ``ml-20m``, ``ml-25m`` (``ratings.csv``): MovieLens,
  the last four split 90/10 by the reference's seeded shuffle (see
  :func:`load_ml_1m`).
* ``netflix``: the Netflix Prize data (``combined_data_1.txt`` ..
  ``combined_data_4.txt``), ``probe.txt`` as the test set and removed from
  training, the standard protocol.
* ``douban``, ``flixster``, ``yahoo_music``: Monti et al.'s
  ``training_test_dataset.mat`` splits (:func:`load_monti`), on their own
  scales (1..5, half stars 0.5..5, 1..100).
* ``file``: any delimited ratings file (:func:`load_ratings_file`).

Text files are parsed by :mod:`glocal_jax.data.parsing` (vectorised, seconds
for 20M lines) and the parsed arrays cached in the user's cache folder
(:func:`default_cache_dir`, never the data's folder; keyed by the file's
path, size and modification time), so a second load reads no text. Every
loader checks its data the same way (:func:`validate`):
ratings on the data set's scale, no cell rated twice in a file or in two
splits (a leaked test rating), and a note when the size differs from the
published release, and one counting the test ratings of users or items
without a training rating (evaluated, predicted by
:func:`glocal_jax.baselines.fallback_predictions`). Errors name the file and
the line. A data set on any scale trains on the model's 1..5
(:meth:`RatingScale.to_model`); metrics are on the data's own scale.

The package's modules, one job each: :mod:`~glocal_jax.data.container`
(:class:`RatingData`, :class:`RatingScale`, the errors),
:mod:`~glocal_jax.data.sources` (public homes, checksums, downloads),
:mod:`~glocal_jax.data.reading` (files to raw triplets, cached),
:mod:`~glocal_jax.data.checks` (the checks and id maps),
:mod:`~glocal_jax.data.loaders`, :mod:`~glocal_jax.data.synthetic` and
:mod:`~glocal_jax.data.splits`.
"""

from glocal_jax.data.checks import validate
from glocal_jax.data.titles import read_titles, with_titles
from glocal_jax.data.container import (HALF_STARS, MODEL_SCALE, STARS,
                                       DataFormatError, MissingDataError,
                                       RatingData, RatingScale)
from glocal_jax.data.loaders import (COLD_USERS, DATASETS, FOLDS, IDS,
                                     OVERLAPS,
                                     load_dataset, load_douban, load_flixster,
                                     load_ml_100k, load_ml_10m, load_ml_1m,
                                     load_ml_20m, load_ml_25m, load_monti,
                                     load_netflix, load_ratings_file,
                                     load_yahoo_music)
from glocal_jax.data.reading import (RawRatings, default_cache_dir,
                                     read_ratings)
from glocal_jax.data.sources import (MONTI_DATASETS, PUBLISHED, SCALES,
                                     SOURCES, Source, default_data_dir)
from glocal_jax.data.splits import split_validation, subsample_train
from glocal_jax.data.synthetic import synthetic
