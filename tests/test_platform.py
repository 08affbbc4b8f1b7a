"""Outside POSIX: the runner still stops cleanly on Ctrl-C and a service manager's stop.

Windows' event loops raise NotImplementedError from ``add_signal_handler``; here a real runner
process runs on a Linux loop forced to do the same, so the fallback path is the one exercised.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from colorchanger_ext.testing import FakeTwitch

from .conftest import PROCESS_TIMEOUT, Runner, RunningRunner

WITHOUT_LOOP_SIGNALS = """
import asyncio, sys

class LoopWithoutSignals(asyncio.SelectorEventLoop):
    def add_signal_handler(self, *args, **kwargs):
        raise NotImplementedError  # what ProactorEventLoop and SelectorEventLoop do on Windows

class Policy(asyncio.DefaultEventLoopPolicy):
    _loop_factory = LoopWithoutSignals

asyncio.set_event_loop_policy(Policy())
from bot_runner.cli import main
main(sys.argv[1:], prog_name="colorchanger-runner")
"""


async def start_without_loop_signals(runner: Runner) -> RunningRunner:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WITHOUT_LOOP_SIGNALS,
        "--config",
        str(runner.config),
        "run",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=runner.env,
    )
    running = RunningRunner(process)
    running.start_reading()
    runner.running.append(running)
    return running


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "service-stop"])
async def test_a_loop_without_signal_handlers_still_stops_cleanly(
    twitch: FakeTwitch, runner: Runner, signum: signal.Signals
) -> None:
    alice = twitch.add_user("alice")
    await runner.import_user(alice)
    running = await start_without_loop_signals(runner)
    await running.wait_for_log(r"started 1/1 users in", timeout=PROCESS_TIMEOUT)
    await twitch.wait_for_subscription(user_id=alice.id, timeout=PROCESS_TIMEOUT)

    assert await running.terminate(signum) == 0, running.log  # within 5 s
    assert "Traceback" not in running.log
