"""Benchmarks of colorchanger-runner against the fake Twitch: ``python -m benchmarks [--quick]``.

The fake Twitch runs in the benchmark process; the runner is a separate ``python -m bot_runner
run`` process, so its memory and CPU are read from ``/proc/<pid>`` and nothing of the fake is
counted against it. See ``docs/benchmarks.md`` for the method and the latest results.
"""
