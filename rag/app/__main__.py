"""`python -m rag.app ...` runs the `rag` command line."""

import sys

from rag.app.cli import main

sys.exit(main())
