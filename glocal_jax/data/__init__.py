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
from glocal_jax.data.container import HALF_STARS
from glocal_jax.data.container import MODEL_SCALE
from glocal_jax.data.container import STARS
from glocal_jax.data.container import DataFormatError
from glocal_jax.data.container import MissingDataError
from glocal_jax.data.container import RatingData
from glocal_jax.data.container import RatingScale
from glocal_jax.data.loaders import COLD_USERS
from glocal_jax.data.loaders import DATASETS
from glocal_jax.data.loaders import FOLDS
from glocal_jax.data.loaders import IDS
from glocal_jax.data.loaders import OVERLAPS
from glocal_jax.data.loaders import load_dataset
from glocal_jax.data.loaders import load_douban
from glocal_jax.data.loaders import load_flixster
from glocal_jax.data.loaders import load_ml_1m
from glocal_jax.data.loaders import load_ml_10m
from glocal_jax.data.loaders import load_ml_20m
from glocal_jax.data.loaders import load_ml_25m
from glocal_jax.data.loaders import load_ml_100k
from glocal_jax.data.loaders import load_monti
from glocal_jax.data.loaders import load_netflix
from glocal_jax.data.loaders import load_ratings_file
from glocal_jax.data.loaders import load_yahoo_music
from glocal_jax.data.reading import RawRatings
from glocal_jax.data.reading import default_cache_dir
from glocal_jax.data.reading import read_ratings
from glocal_jax.data.sources import MONTI_DATASETS
from glocal_jax.data.sources import PUBLISHED
from glocal_jax.data.sources import SCALES
from glocal_jax.data.sources import SOURCES
from glocal_jax.data.sources import Source
from glocal_jax.data.sources import default_data_dir
from glocal_jax.data.splits import split_validation
from glocal_jax.data.splits import subsample_train
from glocal_jax.data.synthetic import synthetic
from glocal_jax.data.titles import read_titles
from glocal_jax.data.titles import title_array
from glocal_jax.data.titles import with_titles
