"""`python -m deployment_model serve | train | predict`: see deployment_model.local."""

import sys

from deployment_model.local import main

sys.exit(main())
