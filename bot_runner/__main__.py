"""``python -m bot_runner``: the same as the ``colorchanger-runner`` command."""

from .cli import main

main()
