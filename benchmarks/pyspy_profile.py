"""Profile the runner with py-spy during one benchmark phase, and print where its CPU goes.

    python benchmarks/pyspy_profile.py idle --users 1000 --seconds 40
    python benchmarks/pyspy_profile.py messages --users 100 --seconds 30 [--rate 1]
    python benchmarks/pyspy_profile.py startup --users 1000

py-spy is not a dependency of the project: ``pip install py-spy`` (it needs ptrace rights on the
runner process). Only samples holding the GIL are kept (``--gil``), i.e. Python actually running,
so the shares are shares of the runner's busy time; SQLite work in aiosqlite's thread releases the
GIL and is under-counted (see the microbenchmarks in docs/benchmarks.md). The raw collapsed stacks
stay in ``--out`` for flame-graph tools.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.append(str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import Bench, cpu_seconds
from benchmarks.scenarios import _messages


async def record(phase: str, users: int, seconds: float, rate: float, out: Path, py_spy: str) -> None:
    with tempfile.TemporaryDirectory(prefix="colorchanger-profile-") as temp:
        bench = Bench(Path(temp), users)
        await bench.open()
        try:
            runner = bench.runner()
            await runner.start()

            async def spy(duration: float) -> asyncio.subprocess.Process:
                return await asyncio.create_subprocess_exec(
                    *(py_spy, "record", "--gil", "--rate", "500", "--format", "raw", "--output", str(out)),
                    *("--pid", str(runner.pid), "--duration", str(max(1, round(duration)))),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )

            # Start-up: from the exec on (py-spy attaches within a few tens of ms).
            sampler = await spy(5 + users * 0.01) if phase == "startup" else None
            try:
                startup = await bench.wait_all_subscribed(runner, timeout=60 + users * 0.2)
                print(f"all {users} users subscribed {startup:.2f} s after start", file=sys.stderr)
                if phase != "startup":
                    sampler = await spy(seconds)
                    cpu, start = cpu_seconds(runner.pid), time.monotonic()
                    if phase == "idle":
                        await runner.guard(asyncio.sleep(seconds), "the idle window")
                    else:
                        await _messages(
                            bench,
                            runner,
                            bench.users,
                            seconds=seconds,
                            per_user_rate=rate,
                            result=None,
                            label="profile",
                        )
                    busy = (cpu_seconds(runner.pid) - cpu) / (time.monotonic() - start) * 100
                    print(f"runner CPU during the phase: {busy:.2f} % of a core", file=sys.stderr)
                assert sampler is not None
                _, errors = await sampler.communicate()
            finally:
                await runner.stop()
            if sampler.returncode != 0:
                raise SystemExit(f"py-spy failed: {errors.decode(errors='replace')}")
            await bench.wait_all_gone()
        finally:
            await bench.close()


def summarize(path: Path, top: int) -> None:
    """Self and inclusive shares per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    print(f"{total} samples holding the GIL")
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"--- {title}")
        for frame, samples in counter.most_common(top):
            print(f"{samples / max(total, 1) * 100:6.2f} %  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", choices=("idle", "messages", "startup"))
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second per user")
    parser.add_argument("--out", type=Path, default=Path("profile.txt"))
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    args = parser.parse_args()
    asyncio.run(record(args.phase, args.users, args.seconds, args.rate, args.out, args.py_spy))
    summarize(args.out, args.top)


if __name__ == "__main__":
    main()
