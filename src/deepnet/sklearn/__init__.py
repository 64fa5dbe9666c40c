"""scikit-learn estimators: deepnet in pipelines, cross-validation and hyperparameter
searches, on any deepnet backend.

``DeepNetClassifier`` and ``DeepNetRegressor`` follow scikit-learn's conventions: ``X`` is
``(n_samples, n_features)``, one example per row (the notes' ``X`` is its transpose, which
the estimators hand to deepnet without a copy); every hyperparameter of the notes (learning
rate, epochs, number of layers and hidden units, activation, momentum, mini-batch size) is
a constructor argument, so ``GridSearchCV`` can search over it. Under
``sklearn.set_config(array_api_dispatch=True)`` torch, CuPy or array-api-strict inputs train
on that library and device and return its arrays; NumPy inputs train on the ``backend``
argument. Needs scikit-learn >= 1.6 (from a clone of deepnet: ``pip install -e
'.[sklearn]'``).

>>> from sklearn.datasets import load_iris
>>> from deepnet.sklearn import DeepNetClassifier
>>> X, y = load_iris(return_X_y=True)
>>> DeepNetClassifier((16,), learning_rate=0.01, epochs=50, random_state=0).fit(X, y).n_iter_
50
"""

from deepnet.datasets import MissingDependencyError

try:
    import sklearn as _sklearn
except ImportError as _exc:
    raise MissingDependencyError(
        "deepnet.sklearn needs scikit-learn (>= 1.6), which is not installed here; from a "
        "clone of deepnet: pip install -e '.[sklearn]'"
    ) from _exc
if tuple(int(p) for p in _sklearn.__version__.split(".")[:2] if p.isdigit()) < (1, 6):
    raise MissingDependencyError(
        f"deepnet.sklearn needs scikit-learn >= 1.6 (estimator tags, validate_data); this "
        f"is {_sklearn.__version__}: pip install -U scikit-learn"
    )

from deepnet.sklearn._classifier import DeepNetClassifier
from deepnet.sklearn._regressor import DeepNetRegressor

__all__ = ["DeepNetClassifier", "DeepNetRegressor"]
