"""Bundle entry point of the ``wsv`` command line."""
import sys

from engine.cli.main import main

sys.exit(main())
