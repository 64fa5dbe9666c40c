"""scikit-learn estimators: deepnet in pipelines, cross-validation and hyperparameter
searches, on any deepnet backend.

``DeepNetClassifier`` and ``DeepNetRegressor`` follow scikit-learn's conventions: ``X`` is
``(n_samples, n_features)``, one example per row (the notes' ``X`` is its transpose, which
the estimators hand to deepnet without a copy); every hyperparameter of the notes (learning
rate, epochs, number of layers and hidden units, activation, momentum, mini-batch size) is
a constructor argument, so ``GridSearchCV`` can search over it. Under
``sklearn.set_config(array_api_dispatch=True)`` torch, CuPy or array-api-strict inputs train
on that library and device and return its arrays; NumPy inputs train on the ``backend``
argument. Needs scikit-learn (``pip install 'deepnet[sklearn]'``).

>>> from sklearn.datasets import load_iris
>>> from deepnet.sklearn import DeepNetClassifier
>>> X, y = load_iris(return_X_y=True)
>>> DeepNetClassifier((16,), learning_rate=0.01, epochs=50, random_state=0).fit(X, y).n_iter_
50
"""

from deepnet.sklearn._classifier import DeepNetClassifier
from deepnet.sklearn._regressor import DeepNetRegressor

__all__ = ["DeepNetClassifier", "DeepNetRegressor"]
