"""``deepnet.bench.results``: atomic writes, schema 2 and the upgrade of schema 1, output
folders checked before any measurement, and where saved results are found."""

from __future__ import annotations

import json
import os

import pytest
from bench_synthetic import synthetic

from deepnet.bench import results as res
from deepnet.bench.summary import summarize
from deepnet.errors import InputError


def test_round_trip(tmp_path):
    data = synthetic({"torch": 1.3})
    path = res.write_json(data, tmp_path / "run")
    assert path == tmp_path / "run" / "results.json"
    loaded = res.load_results(tmp_path / "run")
    assert loaded["schema"] == res.SCHEMA == "deepnet-bench/2"
    assert loaded["samples"] == json.loads(json.dumps(data["samples"]))
    assert loaded["source"] == str(path)
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


def test_schema_1_files_are_read_and_upgraded(tmp_path):
    old = synthetic({"torch": 1.3})
    old["schema"] = "deepnet-bench/1"
    for key in ("unavailable", "budget", "points"):
        old.pop(key)
    for s in old["samples"]:
        s.pop("others_s")
    (tmp_path / "results.json").write_text(json.dumps(old))
    loaded = res.load_results(tmp_path)
    assert loaded["schema_read"] == "deepnet-bench/1" and loaded["schema"] == res.SCHEMA
    assert loaded["unavailable"] == [] and loaded["config"]["criteria"] is None
    rows = summarize(loaded)
    assert rows and all(r["others_cores"] is None for r in rows)


def test_bad_files(tmp_path):
    (tmp_path / "other.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(ValueError, match="not a deepnet bench results file"):
        res.load_results(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not a deepnet bench results file"):
        res.load_results(tmp_path / "broken.json")
    with pytest.raises(FileNotFoundError, match="`deepnet bench --out DIR` writes"):
        res.load_results(tmp_path / "missing")


def test_out_dir_checks(tmp_path):
    assert res.check_out_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir() and not list((tmp_path / "a" / "b").iterdir())
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="exists and is not a folder"):
        res.check_out_dir(tmp_path / "file")
    with pytest.raises(InputError, match="cannot write into --out"):
        res.check_out_dir(tmp_path / "file" / "below")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="permissions do not stop root")
def test_out_dir_without_write_permission(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(InputError, match="directory is not writable: permission denied"):
            res.check_out_dir(locked)
    finally:
        locked.chmod(0o700)


def test_find_results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(res, "_roots", lambda: [tmp_path])
    with pytest.raises(FileNotFoundError, match="run `deepnet bench` first"):
        res.find_results(None)
    for name in ("cpu-before", "cpu-after", "gpu", "cpu"):
        (tmp_path / "benchmarks" / "results" / name).mkdir(parents=True)
        res.write_json(synthetic({}), tmp_path / "benchmarks" / "results" / name)
    shipped = res.shipped_results()
    assert [p.parent.name for p in shipped] == ["cpu", "gpu"]  # history left out
    assert res.find_results(None) == shipped[0]
    res.write_json(synthetic({}), tmp_path / "bench-results")
    assert res.find_results(None) == res.DEFAULT_OUT / "results.json"
    assert res.find_results(tmp_path / "benchmarks" / "results" / "gpu").parent.name == "gpu"
    with pytest.raises(FileNotFoundError, match="no saved results at"):
        res.find_results(tmp_path / "nowhere")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_written_files_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        path = res.write_text(tmp_path / "results.md", "x")
    finally:
        os.umask(mask)
    assert path.read_text() == "x"
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["results.md"]
