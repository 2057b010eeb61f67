"""`python -m tests.drill` (what `make drill` runs): see tests/drill/run.py."""

import sys

from tests.drill.run import main

sys.exit(main())
