"""Traps a newcomer hit using only the documentation (an audit of this round), each now
refused with a clear message or behaving as the documentation says."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import deepnet as dn
from deepnet import cli


def test_a_device_variable_applies_to_its_backend_named_in_code(monkeypatch):
    pytest.importorskip("array_api_strict")
    monkeypatch.setenv("DEEPNET_BACKEND", "array_api_strict")
    monkeypatch.setenv("DEEPNET_DEVICE", "device1")
    monkeypatch.setattr(dn.backend.select, "_override", [])
    net = dn.DeepNet([2, 3, 1], backend="array_api_strict")  # no device: the variable's
    assert dn.backend.device_label(net.device) == "device1"
    assert net.to("array_api_strict").backend is net.backend
    assert dn.DeepNet([2, 1], backend="numpy").device == "cpu"  # another library: its own
    monkeypatch.setenv("DEEPNET_BACKEND", "numpy")  # the variable names another backend
    assert dn.backend.device_label(dn.DeepNet([2, 1], backend="array_api_strict").device) \
        == "CPU_DEVICE"
    with dn.use_backend("array_api_strict", "device1"):  # a block's device, likewise
        assert dn.backend.device_label(
            dn.DeepNet([2, 1], backend="array_api_strict").device) == "device1"


def test_kernels_refuse_arrays_of_two_libraries_with_a_deepnet_error():
    torch = pytest.importorskip("torch")
    net = dn.DeepNet([2, 3, 1], backend="torch")
    p = net.params
    with pytest.raises(dn.InputError, match=r"different libraries \(numpy, torch\).*"
                       r"net\.backend\.asarray"):
        dn.dense_forward(np.zeros((2, 4)), p["W1"], p["b1"], "tanh")
    A, _ = dn.dense_forward(net.backend.asarray(np.zeros((2, 4)), net.dtype), p["W1"],
                            p["b1"], "tanh")  # what the tutorial does
    assert isinstance(A, torch.Tensor)


@pytest.mark.parametrize(("labels", "held"), [
    (np.array(["a", "b", "a"]), "strings"),
    (np.array([1, 2, 3], dtype=object), "Python objects"),
    (np.array([1 + 1j, 2, 3]), "complex numbers"),
])
def test_non_numbers_are_named_for_what_they_are(backend, labels, held):
    net = dn.DeepNet([2, 1], backend=backend)
    with pytest.raises(dn.InputError, match=f"{held} are not supported"):
        net.fit(np.zeros((2, 3)), labels, epochs=1, progress=False)


@pytest.mark.parametrize(("flags", "words"), [
    (["--layers", "64,,10"], "64,,10"),
    (["--batch-size", "0"], "positive integer, or 'full'"),
    (["--batch-size", "-0"], "positive integer, or 'full'"),
])
def test_command_line_typos_are_refused(capsys, flags, words):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--no-progress", *flags])
    assert exit_.value.code == 2 and words in capsys.readouterr().err


def test_a_directory_as_checkpoint_is_named_before_the_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert cli.main(["train", "--no-progress", "--checkpoint", "runs/"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint" in err and "directory" in err and "--plot" not in err


def test_bench_names_only_what_is_wrong(capsys):
    for argv, wrong, right in ((["--dtype", "float16"], "--dtype", "--repeat"),
                               (["--advise", "-5", "512"], "positive width", "--dtype")):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["bench", *argv])
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert exit_.value.code == 2 and wrong in err and right not in err, err


# -- a second audit of the public API and the data intake ---------------------------------


@pytest.mark.parametrize("backend_name", ["torch", "numpy"])
def test_a_sparse_torch_tensor_is_refused_by_name(backend_name):
    torch = pytest.importorskip("torch")
    net = dn.DeepNet([3, 4, 1], backend=backend_name, seed=0)
    before = {k: dn.to_numpy(v).copy() for k, v in net.params.items()}
    X = torch.randn(3, 8, dtype=torch.float64)
    with warnings.catch_warnings():  # torch: "Sparse CSR tensor support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        csr = X.to_sparse_csr()
    for sparse in (X.to_sparse(), csr):
        for call in (lambda x=sparse: net.predict(x),
                     lambda x=sparse: net.evaluate(x, np.ones(8)),
                     lambda x=sparse: net.fit(x, np.ones(8), epochs=1, progress=False)):
            with pytest.raises(dn.InputError, match=r"X is a torch tensor of layout sparse_"
                               r"(coo|csr); deepnet takes dense arrays: pass X\.to_dense\(\)"):
                call()
    with pytest.raises(dn.InputError, match="to_dense"):
        net.fit(X, torch.ones(8).to_sparse(), epochs=1, progress=False)
    assert net.history is None
    assert all(np.array_equal(dn.to_numpy(v), before[k]) for k, v in net.params.items())


def test_evaluate_without_labels_is_a_deepnet_error(backend):
    net = dn.DeepNet([2, 3, 3], output="softmax", backend=backend)
    with pytest.raises(dn.InputError, match=r"Y must be an array of labels.*got NoneType"):
        net.evaluate(np.zeros((2, 4)), None)


@pytest.mark.parametrize("backend_name", ["numpy", "array_api_strict"])
def test_public_methods_leak_no_float_warnings(backend_name):
    """Finite inputs whose arithmetic overflows float32 give inf or 0, never a NumPy
    RuntimeWarning (the suite turns warnings into errors)."""
    pytest.importorskip(backend_name)
    big = np.full((3, 5), 3e38)
    net = dn.DeepNet([3, 4, 1], output="linear", backend=backend_name, seed=0)
    AL, caches = net.forward(big)
    assert AL.shape == (1, 5)
    AL, caches = net.forward(np.ones((3, 5)))
    # squares below float32's max whose sum is not: the cost is inf, quietly
    assert net.cost(AL, np.full(5, 1.5e19), caches) == float("inf")
    net.backward(AL, np.full(5, 1.5e19), caches)
    with pytest.raises(dn.InputError, match="would overflow"):  # each square overflows
        net.cost(AL, np.full(5, 3e38), caches)


def test_a_memory_map_beyond_float32_is_refused_before_any_work(tmp_path):
    """float64 values finite in the file but beyond float32's range: refused up front
    with the in-memory message, not mid-fit as "the file changed under the fit"."""
    path = tmp_path / "X.npy"
    np.save(path, np.full((3, 40), 1e300))
    X = np.load(path, mmap_mode="r")
    net = dn.DeepNet([3, 4, 1], backend="numpy", seed=0, dtype="float32")
    before = {k: v.copy() for k, v in net.params.items()}
    for call in (lambda: net.fit(X, np.ones(40), epochs=1, progress=False),
                 lambda: net.predict(X), lambda: net.evaluate(X, np.ones(40))):
        with pytest.raises(dn.InputError) as error:
            call()
        message = str(error.value)
        assert "beyond ±3.4e+38 become inf as float32" in message and "X.npy" in message
        assert "changed under the fit" not in message
    assert net.history is None
    assert all(np.array_equal(v, before[k]) for k, v in net.params.items())
    wide = dn.DeepNet([3, 4, 1], backend="numpy", seed=0, dtype="float64")
    assert wide.predict(X).shape == (1, 40)  # float64 holds them


def test_flags_are_booleans_not_truthy_strings():
    net = dn.DeepNet([2, 3, 1], backend="numpy", seed=0)
    X, Y = np.zeros((2, 4)), np.ones(4)
    for kwargs in ({"train_metrics": "no"}, {"prefetch": "no"}, {"train_metrics": None}):
        name = next(iter(kwargs))
        with pytest.raises(dn.InputError, match=f"{name} must be True or False; got"):
            net.fit(X, Y, epochs=1, progress=False, **kwargs)
    with pytest.raises(dn.InputError, match="training must be True or False"):
        net.forward(X, training="no")
    with pytest.raises(dn.InputError, match="reuse_buffers must be True or False"):
        dn.DeepNet([2, 1], reuse_buffers="no")
    assert net.history is None
    net.fit(X, Y, epochs=1, progress=False, train_metrics=np.bool_(False))


def test_comm_must_be_a_communicator():
    net = dn.DeepNet([2, 3, 1], backend="numpy", seed=0)
    with pytest.raises(dn.InputError, match=r"comm must be None or a communicator from "
                       r"deepnet\.distributed\.init\(\); got <object"):
        net.fit(np.zeros((2, 4)), np.ones(4), epochs=1, progress=False, comm=object())
    assert net.history is None


@pytest.mark.parametrize("shape", ["column", "row"])
def test_class_labels_as_a_column_or_row_get_a_ravel_hint(shape):
    labels = np.array([0, 2, 1, 2])
    Y = labels[:, None] if shape == "column" else labels[None, :]
    net = dn.DeepNet([2, 3, 3], output="softmax", backend="numpy")
    with pytest.raises(dn.ShapeError, match=r"Class labels go in shape \(m,\): pass "
                       r"Y\.ravel\(\)\?"):
        net.fit(np.zeros((2, 4)), Y, epochs=1, progress=False)


def test_non_finite_float64_labels_are_not_told_to_use_float64():
    net = dn.DeepNet([2, 3, 1], backend="numpy", dtype="float64")
    with pytest.raises(dn.InputError, match=r"Y must be finite; it holds 1 NaN or inf "
                       r"value\(s\)$"):
        net.fit(np.zeros((2, 3)), np.array([0.0, np.nan, 1.0]), epochs=1, progress=False)


def test_layer_kernels_check_the_notes_shapes_before_any_arithmetic(backend):
    """The public kernels take the caller's arrays: a b of shape (n[l],) used to broadcast
    along the examples silently when n[l] == m, a W of the wrong shape leaked the
    library's matmul error, a list or a bad cache a TypeError."""
    xp = backend.xp

    def ones(*shape):
        return xp.ones(shape, dtype=backend.dtype("float64"), device=backend.device)

    A, W, b = ones(4, 4), ones(4, 4), ones(4, 1)
    with pytest.raises(dn.ShapeError, match=r"linear_forward: b must have shape \(n\[l\], 1\) "
                       r"= \(4, 1\) for W \(4, 4\); got \(4,\)"):
        dn.linear_forward(A, W, ones(4))
    with pytest.raises(dn.ShapeError, match=r"dense_forward: W \(4, 3\) is \(n\[l\], n\[l-1\]\)"
                       r", so A_prev must have n\[l-1\] = 3 rows; got A_prev \(4, 4\)"):
        dn.dense_forward(A, ones(4, 3), b, "relu")
    with pytest.raises(dn.InputError, match="A_prev must be an array of the network's library; "
                       "got list"):
        dn.linear_forward([[1.0]], [[1.0]], [[0.0]])
    Z, cache = dn.linear_forward(A, W, b)
    A1, dense_cache = dn.dense_forward(A, W, b, "tanh")
    with pytest.raises(dn.ShapeError, match=r"dZ has shape \(4, 3\); expected \(n\[l\], m\) = "
                       r"\(4, 4\)"):
        dn.linear_backward(ones(4, 3), cache)
    with pytest.raises(dn.InputError, match=r"cache must be the tuple \(linear_cache, Z, A\)"):
        dn.dense_backward(A1, None, "tanh")
    with pytest.raises(dn.InputError, match="divide_by must be a positive number"):
        dn.linear_backward(Z, cache, divide_by=0)
    _, dW, db = dn.dense_backward(A1, dense_cache, "tanh")
    assert tuple(dW.shape) == (4, 4) and tuple(db.shape) == (4, 1)


def test_numbers_stored_as_objects_are_named_with_the_conversion(backend):
    """A DataFrame with int, float and bool columns gives an object array from .to_numpy()
    or .T: the message says its values are numbers and how to convert them; missing values
    (pd.NA, None) are named as such."""
    mixed = np.empty((3, 4), dtype=object)
    mixed[0], mixed[1], mixed[2] = [0, 1, 2, 3], [0.5, 1.5, 2.5, 3.5], [True, False] * 2
    net = dn.DeepNet([3, 4, 1], backend=backend)
    with pytest.raises(dn.InputError, match=r"numbers stored as Python objects .*pass "
                       r"np\.asarray\(X, dtype=np\.float64\)"):
        net.fit(mixed, np.ones(4), epochs=1, progress=False)
    mixed[1, 2] = None
    with pytest.raises(dn.InputError, match=r"values that are not numbers \(None, pd\.NA or "
                       r"text\?\): fill or drop the missing values"):
        net.predict(mixed)
    assert net.fit(np.asarray(mixed[:, [0, 1, 3]], dtype=np.float64), np.ones(3), epochs=1,
                   progress=False).cost


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linear_targets_whose_squares_overflow_are_refused_with_that_cause(backend, dtype):
    """Targets of 3e38 in float32 fit the dtype, but the cost squares them: the first
    step's cost was inf and DivergenceError blamed the learning rate. Refused up front,
    from memory and from a memory map, with nothing changed."""
    big = 3e38 if dtype == "float32" else 1e200
    net = dn.DeepNet([3, 4, 1], output="linear", backend=backend, dtype=dtype, seed=0)
    before = {k: dn.to_numpy(v).copy() for k, v in net.params.items()}
    X, Y = np.random.default_rng(0).random((3, 8)), np.full(8, big)
    with pytest.raises(dn.InputError, match=r"Y targets must stay within ±.* for a linear "
                       rf"output in {dtype} .*got \|Y\| up to {re.escape(f'{big:.3g}')}"):
        net.fit(X, Y, epochs=1, progress=False)
    with pytest.raises(dn.InputError, match="would overflow"):
        net.evaluate(X, Y)
    assert all(np.array_equal(before[k], dn.to_numpy(v)) for k, v in net.params.items())
    assert net.fit(X, Y / big, epochs=1, progress=False).cost


def test_an_object_array_holding_an_int_beyond_float64_is_named_not_leaked(backend):
    """Describing an object array converts it to float64 for the hint; an int of 400
    digits raised OverflowError from inside the error message (a fuzz find)."""
    net = dn.DeepNet([2, 2], output="softmax", backend=backend, seed=0)
    odd = np.array([[None, None], [None, 10**400]], dtype=object)
    with pytest.raises(dn.InputError, match=r"values that are not numbers"):
        net.predict(odd)
    _, caches = net.forward(np.ones((2, 2)))
    with pytest.raises(dn.InputError, match=r"AL .*values that are not numbers"):
        net.cost(odd, np.array([0, 1]), caches)
