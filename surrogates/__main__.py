"""`python -m surrogates` runs the command-line interface."""

import sys

from surrogates.cli import main

sys.exit(main())
