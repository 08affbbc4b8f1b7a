"""``python -m benchmarks``: run every benchmark and print the markdown tables."""

from benchmarks.run import main

raise SystemExit(main())
