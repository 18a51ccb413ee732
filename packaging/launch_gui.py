"""Bundle entry point of the desktop app (PyInstaller needs a script, not a console-script entry)."""
import sys

from wsv_gui.app import main

sys.exit(main())
