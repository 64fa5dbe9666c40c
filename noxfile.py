"""nox sessions: the test suite on each CPU backend, lint, types, the docs, the benchmarks."""

import nox

nox.options.sessions = ["tests", "distributed", "lint", "types", "docs"]
BACKENDS = ["numpy", "array_api_strict", "torch"]


def _install(session: nox.Session, extras: str) -> None:
    session.install("torch==2.13.0")  # the CPU wheel; a looser pin pulls a CUDA build
    session.install("-e", f".[{extras}]")


@nox.session
@nox.parametrize("backend", BACKENDS)
def tests(session: nox.Session, backend: str) -> None:
    """The suite on one backend (array_api_strict covers both of its devices)."""
    _install(session, "test")
    ids = "array_api_strict,array_api_strict:device1" if backend == "array_api_strict" else backend
    session.run("python", "-m", "pytest", "-m", "not distributed", *session.posargs,
                env={"DEEPNET_TEST_BACKENDS": ids})


@nox.session
def distributed(session: nox.Session) -> None:
    """The tests that launch several processes (mpiexec -n 2 and 3, torch.distributed)."""
    _install(session, "test")
    session.run("python", "-m", "pytest", "-m", "distributed", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session
def benchmarks(session: nox.Session) -> None:
    """The pytest-benchmark suite (CPU-sized points)."""
    _install(session, "test,bench")
    session.run("python", "-m", "pytest", "benchmarks", "-m", "not large", *session.posargs)


@nox.session(python=False)
def gpu_dry_run(session: nox.Session) -> None:
    """benchmarks/gpu.sh end to end on the CPU, in the current environment."""
    session.run("bash", "benchmarks/gpu.sh", "--dry-run", external=True)


@nox.session
def tests_without_torch(session: nox.Session) -> None:
    """The suite where torch is not installed: every use of torch must skip."""
    session.install("-e", ".", "pytest", "hypothesis", "array-api-strict")
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session
def types(session: nox.Session) -> None:
    """mypy on src/deepnet (configured in pyproject.toml)."""
    session.install("-e", ".[types]")
    session.run("mypy", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built strictly (any warning fails), and its examples run."""
    _install(session, "docs,test")
    session.run("mkdocs", "build", "--strict", "--site-dir", session.create_tmp(),
                env={"NO_MKDOCS_2_WARNING": "1"})
    session.run("python", "-m", "pytest", "tests/test_docs.py", "-q", *session.posargs)
