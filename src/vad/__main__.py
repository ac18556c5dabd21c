"""`python -m vad`."""

import sys

from vad.cli import main

sys.exit(main())
