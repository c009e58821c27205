"""`python -m trainer`, the same as `medviewer-train`."""

import sys

from trainer.cli import main

sys.exit(main())
