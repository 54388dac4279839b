"""`python -m deployment_model`: see deployment_model.local.cli."""

import sys

from deployment_model.local.cli import main

sys.exit(main())
