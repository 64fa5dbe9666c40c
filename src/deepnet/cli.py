"""The ``deepnet`` command: ``deepnet train``, ``deepnet info``, ``deepnet bench``.

``deepnet train`` trains a ``[64, 128, 64, 10]`` relu/softmax network with Adam on
scikit-learn's bundled 8×8 digits (or on one of the generated 2-D sets), shows a progress
bar, prints the final train/test accuracy and the time, saves a checkpoint and, where
matplotlib is installed, a PNG of the cost curves. ``deepnet info`` says which backends
work here, their versions and devices, and the BLAS in use. ``deepnet bench ARGS`` hands
its arguments to ``deepnet.bench``.

Errors deepnet raises on purpose are printed as one line on stderr, exit status 2; every
output path is checked before any work starts, and Ctrl-C ends a command with status 130
and one line on stderr (``deepnet.cli_train`` says what becomes of its files).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import platform
import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

import deepnet
from deepnet import cli_train, distributed
from deepnet.backend import available_backends, get_backend, resolve_dtype_name
from deepnet.errors import DeepNetError


class Parser(argparse.ArgumentParser):
    """argparse, with a user error as one line on stderr and exit status 2: the error and
    where the options are listed, not the usage block (``--help`` prints that)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="deepnet",
        description="Train fully connected deep networks on NumPy, CuPy, PyTorch or "
        "array-api-strict.",
    )
    parser.add_argument("--version", action="version", version=f"deepnet {deepnet.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{train,info,bench}")

    train = sub.add_parser(
        "train", help="train a network (default: digits, [64,128,64,10], Adam)",
        description="Train a network, print its train/test accuracy, save a checkpoint "
        "and a plot of the cost curves. Every output path is checked before training.",
    )
    cli_train.add_arguments(train)
    train.set_defaults(func=cli_train.train)

    info = sub.add_parser("info", help="backends, versions, devices and BLAS here",
                          description="Say which backends work here, and whether the "
                          "default one (DEEPNET_BACKEND, DEEPNET_DEVICE, DEEPNET_DTYPE) "
                          "can run: exit status 2 when it cannot.")
    info.set_defaults(func=_info)

    sub.add_parser("bench", help="benchmarks (arguments go to deepnet.bench)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``deepnet`` command with ``argv`` (default: ``sys.argv[1:]``); the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        return _bench(argv[1:])
    command = argv[0] if argv and argv[0] in ("train", "info") else None
    comm = distributed.start_command(command)  # mpiexec/srun/torchrun: rank 0 alone prints
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        return args.func(args)
    except DeepNetError as exc:
        comm.fail(exc)  # the other ranks stop with it instead of waiting for this one
        print(f"deepnet {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before anything was written (later phases say more)
        print(f"deepnet{' ' + command if command else ''}: interrupted; nothing was written",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of the output went away (deepnet info | head)
        _silence_stdout()
        return 128 + 13  # as a shell tool killed by SIGPIPE: the files written stay whole


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush into the closed pipe
    prints no second error on the way out."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


# -- deepnet bench --------------------------------------------------------------------------


def _bench(argv: list[str]) -> int:
    try:
        bench = importlib.import_module("deepnet.bench")
    except ModuleNotFoundError as exc:
        if exc.name != "deepnet.bench":
            raise
        print("deepnet bench: error: this install has no deepnet.bench module",
              file=sys.stderr)
        return 2
    try:
        return int(bench.main(argv) or 0)
    except DeepNetError as exc:
        print(f"deepnet bench: error: {exc}", file=sys.stderr)
        return 2


# -- deepnet info ---------------------------------------------------------------------------


def _devices(name: str) -> str:
    """The devices of a loaded backend, as text."""
    if name == "numpy":
        return "cpu"
    if name == "torch":
        torch = sys.modules["torch"]
        cuda = ([f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                 for i in range(torch.cuda.device_count())]
                if torch.cuda.is_available() else [])
        note = "" if cuda else f" (no CUDA device; CUDA build: {torch.version.cuda})"
        return ", ".join(["cpu", *cuda]) + note
    if name == "cupy":
        cupy = sys.modules["cupy"]
        count = cupy.cuda.runtime.getDeviceCount()
        names = []
        for i in range(count):
            props = cupy.cuda.runtime.getDeviceProperties(i)
            label = props["name"]
            names.append(f"{i} ({label.decode() if isinstance(label, bytes) else label})")
        return ", ".join(names)
    xp = sys.modules["array_api_strict"]
    return ", ".join(str(d).removeprefix("array_api_strict.Device(").rstrip(")").strip("'")
                     for d in xp.__array_namespace_info__().devices())


def _info(args: argparse.Namespace) -> int:
    print(f"deepnet {deepnet.__version__} (python {platform.python_version()}, "
          f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores)")
    env = {k: os.environ[k] for k in ("DEEPNET_BACKEND", "DEEPNET_DEVICE", "DEEPNET_DTYPE")
           if os.environ.get(k)}
    print("environment: " + (", ".join(f"{k}={v}" for k, v in env.items()) or
                             "no DEEPNET_* variables set (numpy, float32)"))
    try:
        default = get_backend()
        problem = None
        print(f"default: {default.label} {resolve_dtype_name()}")
    except DeepNetError as exc:
        problem = str(exc)
        print("default: cannot run here (see below)")
    print("backends:")
    for name, status in available_backends().items():
        if status == "ok":
            module = sys.modules[name]
            version = getattr(module, "__version__", "?")
            print(f"  {name:<17} ok   {name} {version}; devices: {_devices(name)}")
        else:
            print(f"  {name:<17} --   {status}")
    print("BLAS and thread pools:")
    try:
        import threadpoolctl
    except ImportError:
        print("  unknown (install threadpoolctl to see them: pip install threadpoolctl)")
    else:
        pools = threadpoolctl.threadpool_info()
        if not pools:
            print("  none found")
        for pool in pools:
            print(f"  {pool.get('user_api')}: {pool.get('internal_api')} "
                  f"{pool.get('version') or ''} ({pool.get('num_threads')} threads) "
                  f"{pool.get('filepath')}")
    if problem is not None:
        sys.stdout.flush()
        print(f"deepnet info: error: the default backend cannot run here: {problem}",
              file=sys.stderr)
        return 2
    return 0


def entry(run: Callable[[], int] = main) -> int:
    """The console script (and ``python -m deepnet``, ``python -m deepnet.bench``):
    ``run()`` (:func:`main`), then Ctrl-C ignored while the interpreter shuts down, so
    that a finished command keeps its exit status and prints no traceback."""
    code = 130
    try:
        code = run()
    except KeyboardInterrupt:  # came between main's last line and here
        print("deepnet: interrupted", file=sys.stderr)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


__all__ = ["Parser", "entry", "main"]


if __name__ == "__main__":
    sys.exit(entry())
