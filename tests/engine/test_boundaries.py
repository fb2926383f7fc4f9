"""The engine never imports textual, and the CLI's start-up never imports torch."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import engine


def _modules_loaded_after(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_engine_never_imports_textual():
    names = [info.name for info in pkgutil.walk_packages(engine.__path__, "engine.") if not info.name.endswith("__main__")]
    loaded = _modules_loaded_after("\n".join(f"import {name}" for name in names))
    assert set(names) <= loaded, "every engine module was imported"
    assert "textual" not in loaded


def test_cli_help_does_not_import_torch():
    loaded = _modules_loaded_after(
        "from engine.cli import build_parser\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    build_parser().parse_args(['--help'])"
    )
    assert "engine.cli" in loaded
    assert "torch" not in loaded
    assert "transformers" not in loaded
