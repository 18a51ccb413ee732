"""The engine runs headless: every engine module imports with Qt and pyqtgraph unavailable."""
import subprocess
import sys
import textwrap

BLOCKED = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6", "qtpy")


def test_engine_imports_with_qt_blocked():
    code = textwrap.dedent(f"""
        import importlib, importlib.abc, pkgutil, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError(f"engine imported {{name}}")
                return None

        sys.meta_path.insert(0, Block())
        import engine
        names = [m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")]
        for name in names:
            importlib.import_module(name)
        assert not any(m.split(".")[0] in {BLOCKED!r} for m in sys.modules)
        print(len(names))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) >= 10
