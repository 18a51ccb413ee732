"""Entry point of ``wsv-gui``: checks that the system can show a Qt window before anything imports Qt, so a bare
Linux desktop gets the list of packages to install instead of Qt's "no Qt platform plugin could be initialized"."""
from __future__ import annotations

import sys

from wsv_gui.system_libraries import install_hint, missing_libraries


def main(argv: list[str] | None = None) -> int:
    missing = missing_libraries()
    if missing:
        print(f"wsv-gui: error: {install_hint(missing)}", file=sys.stderr)
        return 1
    from wsv_gui.app import main as run_app

    return run_app(argv)


if __name__ == "__main__":
    sys.exit(main())
