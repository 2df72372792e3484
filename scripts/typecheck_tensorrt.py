"""Type-check fer-edge's TensorRT and CUDA modules against the installed ``tensorrt-stubs``.

``tensorrt-stubs`` 10.13.0.35.1 installs ``tensorrt/__init__.pyi`` without a ``py.typed``
marker (so mypy skips it as untyped) and five signatures that are not valid Python (a
parameter named ``in``; a required parameter after defaulted ones). This script copies the
stubs into a temporary folder, repairs those lines, and runs mypy with that folder on
MYPYPATH. Usage::

    pip install --no-deps tensorrt-stubs==10.13.0.35.1   # its deps pull the real TensorRT
    python scripts/typecheck_tensorrt.py                 # exit status is mypy's
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import tomllib

TARGETS = ["fer_edge/runtime", "fer_edge/build", "fer_edge/commands/build_engine.py"]
FIXES = [
    (re.compile(r"([(,]\s*)in:"), r"\1in_:"),
    (re.compile(r"channel_axis: int\)"), "channel_axis: int = ...)"),
]


def stub_root() -> Path:
    for key in ("purelib", "platlib"):
        root = Path(sysconfig.get_paths()[key])
        if (root / "tensorrt" / "__init__.pyi").is_file():
            return root
    sys.exit("tensorrt-stubs is not installed: pip install --no-deps tensorrt-stubs==10.13.0.35.1")


def mypy_ini(pyproject: Path) -> str:
    """The project's [tool.mypy] settings, plus: report nothing inside the stubs themselves
    (they hold hundreds of errors of their own, e.g. ``bool`` shadowed by a variable)."""
    settings = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("mypy", {})
    lines = ["[mypy]"]
    for key, value in settings.items():
        if key == "overrides":
            continue
        lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else value}")
    lines += [
        "",
        "[mypy-tensorrt,tensorrt.*,tensorrt_bindings,tensorrt_bindings.*]",
        "ignore_errors = True",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    root = stub_root()
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="trt-stubs-") as tmp:
        for package in ("tensorrt", "tensorrt_bindings"):
            dest = Path(tmp) / package
            shutil.copytree(
                root / package, dest, ignore=shutil.ignore_patterns("*.py", "*.so", "__pycache__")
            )
            for stub in dest.glob("*.pyi"):
                text = stub.read_text(encoding="utf-8")
                for pattern, repl in FIXES:
                    text = pattern.sub(repl, text)
                stub.write_text(text, encoding="utf-8")
        config = Path(tmp) / "mypy.ini"
        config.write_text(mypy_ini(repo / "pyproject.toml"), encoding="utf-8")
        env = {**os.environ, "MYPYPATH": tmp}
        targets = [t for t in TARGETS if (repo / t).exists()]
        cmd = [sys.executable, "-m", "mypy", "--no-incremental", "--config-file", str(config), *targets]
        return subprocess.run(cmd, cwd=repo, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
