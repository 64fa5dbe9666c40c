"""deepnet's estimators inside scikit-learn's workflows: Pipeline, cross_val_score,
GridSearchCV and RandomizedSearchCV (the searches with two worker processes), and the
example of docs/sklearn.md, run as it is written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
os.environ.setdefault("SCIPY_ARRAY_API", "1")  # read when array_api_dispatch is turned on

from scipy.stats import loguniform, randint
from sklearn.datasets import load_diabetes, load_digits, load_iris
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    cross_val_score,
    train_test_split,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from deepnet.sklearn import DeepNetClassifier, DeepNetRegressor

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sklearn.md"


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X[:600], y[:600], test_size=0.25, random_state=0, stratify=y[:600])


def test_a_pipeline_scales_then_trains(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(StandardScaler(), DeepNetClassifier((32,), learning_rate=0.01,
                                                             epochs=30, random_state=0))
    pipe.fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.9
    clf = pipe[-1]
    assert clf.net_.layer_dims == (64, 32, 10) and clf.n_iter_ == 30
    # the pipeline hands the network exactly what the scaler makes of X
    expected = clf.predict_proba(pipe[0].transform(X_test))
    np.testing.assert_array_equal(pipe.predict_proba(X_test), expected)


def test_cross_val_score_in_two_processes():
    X, y = load_diabetes(return_X_y=True)
    reg = make_pipeline(StandardScaler(), DeepNetRegressor((16,), learning_rate=0.01,
                                                           epochs=50, random_state=0))
    scores = cross_val_score(reg, X, (y - y.mean()) / y.std(), cv=3, n_jobs=2)
    assert scores.shape == (3,) and (scores > 0.2).all()  # R², as on a single process
    alone = cross_val_score(reg, X, (y - y.mean()) / y.std(), cv=3, n_jobs=1)
    np.testing.assert_array_equal(scores, alone)


def test_grid_search_over_the_notes_hyperparameters_in_two_processes(digits):
    X_train, X_test, y_train, y_test = digits
    grid = {
        "hidden_layer_sizes": [(16,), (32, 16)],
        "activation": ["relu", "tanh"],
        "learning_rate": [0.01, 0.1],
        "optimizer": ["momentum"],
        "momentum": [0.9],
        "batch_size": [32],
        "epochs": [20],
    }
    search = GridSearchCV(make_pipeline(StandardScaler(), DeepNetClassifier(random_state=0)),
                          {f"deepnetclassifier__{k}": v for k, v in grid.items()},
                          cv=3, n_jobs=2)
    search.fit(X_train, y_train)
    assert len(search.cv_results_["params"]) == 8
    best = search.best_estimator_[-1]
    params = {k.split("__")[1]: v for k, v in search.best_params_.items()}
    assert best.get_params()["hidden_layer_sizes"] == params["hidden_layer_sizes"]
    assert best.net_.layer_dims == (64, *params["hidden_layer_sizes"], 10)
    assert best.net_.hidden[0] == params["activation"]
    assert best.optimizer_.learning_rate == params["learning_rate"]
    assert search.best_score_ > 0.85 and search.score(X_test, y_test) > 0.85


def test_randomized_search_in_two_processes():
    X, y = load_iris(return_X_y=True)
    space = {
        "learning_rate": loguniform(1e-3, 1e-1),
        "epochs": randint(20, 60),
        "hidden_layer_sizes": [(8,), (16,), (16, 8)],
        "batch_size": randint(8, 64),
    }
    search = RandomizedSearchCV(DeepNetClassifier(random_state=0), space, n_iter=4, cv=3,
                                n_jobs=2, random_state=0)
    search.fit((X - X.mean(axis=0)) / X.std(axis=0), y)
    drawn = search.cv_results_["params"]
    assert len(drawn) == 4 and len({p["learning_rate"] for p in drawn}) == 4
    assert search.best_estimator_.n_iter_ == search.best_params_["epochs"]
    assert search.best_score_ > 0.8


def test_the_documentation_example_runs_as_written(capsys):
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2
    namespace: dict = {}
    exec(compile(blocks[0], f"{DOCS}:grid-search", "exec"), namespace)
    out = capsys.readouterr().out
    assert "learning_rate" in out and "test accuracy 0.9" in out
    pytest.importorskip("torch")
    exec(compile(blocks[1], f"{DOCS}:dispatch", "exec"), namespace)
    out = capsys.readouterr().out
    assert out.startswith("Backend('torch') Tensor training accuracy 0.9")


def test_the_comparison_benchmark_writes_its_table(tmp_path, capsys):
    import importlib.util

    path = DOCS.parents[1] / "benchmarks" / "sklearn_compare.py"
    spec = importlib.util.spec_from_file_location("sklearn_compare", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "table.md"
    bench.main(["--repeats", "2", "--epochs", "2", "--datasets", "iris,diabetes",
                "--out", str(out)])
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows[2:]] == ["| iris", "| diabetes"]
    assert "--repeats 2 --epochs 2" in out.read_text() and capsys.readouterr().out
