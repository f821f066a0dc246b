import sys

from tillit.cli import main

sys.exit(main())
