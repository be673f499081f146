"""``python -m app`` is the same as the ``onepass`` console script."""

from app.cli import main

raise SystemExit(main())
