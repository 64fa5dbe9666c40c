"""The memory guard's estimate beside the measured peak of building a network.

For each backend, dtype and shape: the peak resident memory a fresh process gains while
``DeepNet(dims)`` is built (``ru_maxrss`` of a forked child, less its resident memory
before) and :func:`deepnet.memory.network_peak`'s estimate. The guard refuses a network
whose estimate exceeds the available memory, so the estimate must bound the peak (ratio
>= 1) without being far above it.

    PYTHONPATH=src python benchmarks/memory_peak.py            # Linux; ~1 minute
    PYTHONPATH=src python benchmarks/memory_peak.py --large    # adds 2**26-weight layers

Prints a Markdown table (bytes per parameter, ratio estimate / measured).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

SHAPES = [
    [2**22, 1], [1, 2**22], [4096, 4096], [1536, 1536, 1536], [64, 2048, 2048, 10],
    [2048, 2048, 2048, 2048, 2048], [1024] * 9, [100, 300, 300, 10],
]
LARGE = [[2**26, 1], [8192, 8192, 8192]]


def measure(name: str, shapes: list, dtypes: list[str]) -> list[dict]:
    """In this process: one forked child per network (``ru_maxrss`` only grows)."""
    import deepnet as dn
    from deepnet import memory

    dn.DeepNet([2, 1], backend=name)  # the library loaded before measuring
    rows = []
    for dims in shapes:
        for dtype in dtypes:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                with open("/proc/self/statm") as f:
                    before = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
                dn.DeepNet(dims, backend=name, dtype=dtype)
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                os.write(w, str(peak - before).encode())
                os._exit(0)
            os.close(w)
            measured = int(os.read(r, 64))
            os.waitpid(pid, 0)
            n = sum(dims[l] * (dims[l - 1] + 1) for l in range(1, len(dims)))
            estimate = memory.network_peak(dims, dtype, dn.get_backend(name)).host
            rows.append({"backend": name, "dims": dims, "dtype": dtype, "params": n,
                         "measured": measured, "estimate": estimate})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="add layers of 2**26 weights")
    parser.add_argument("--backends", default="numpy,array_api_strict,torch")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shapes = SHAPES + (LARGE if args.large else [])
    if args.child:
        print(json.dumps(measure(args.child, shapes, ["float32", "float64"])))
        return
    print("| backend | layer_dims | dtype | parameters | measured B/param | estimate B/param "
          "| estimate / measured |")
    print("|---|---|---|---:|---:|---:|---:|")
    for name in args.backends.split(","):
        proc = subprocess.run([sys.executable, __file__, "--child", name]
                              + (["--large"] if args.large else []),
                              capture_output=True, text=True, check=True)
        for row in json.loads(proc.stdout):
            dims = row["dims"]
            if len(dims) > 5:
                dims = f"[{dims[0]}] * {len(dims)}"
            print(f"| {row['backend']} | {dims} | {row['dtype']} | {row['params']:,} | "
                  f"{row['measured'] / row['params']:.2f} | {row['estimate'] / row['params']:.2f} "
                  f"| {row['estimate'] / row['measured']:.2f} |")


if __name__ == "__main__":
    main()
