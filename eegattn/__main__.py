import sys

from eegattn.cli import main

sys.exit(main())
