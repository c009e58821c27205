"""`python -m medviewer` is the same program as the `medviewer` console script."""

from medviewer.cli import main

raise SystemExit(main())
