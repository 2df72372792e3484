"""The layers of docs/architecture.md hold: no module imports from a layer above its own.

Every ``import fer_edge...`` and ``from fer_edge... import`` in the package is read with ``ast``,
those inside functions too (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fer_edge"

# docs/architecture.md, "Layers": each may import itself and those before it.
ORDER = ["core", "model", "data", "runtime", "moodlog", "build", "train", "camera", "fleet", "bench",
         "commands", "cli"]
# The package's face and entry point stand above everything.
TOP = {"__init__", "__main__"}


def stem(name: str) -> str:
    return name[: -len(".py")] if name.endswith(".py") else name


def part_of(module: str) -> str:
    """fer_edge.camera.sources -> camera; fer_edge.cli -> cli."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("fer_edge.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "fer_edge":
                found += [(node.lineno, f"fer_edge.{a.name}") for a in node.names if a.name != "__version__"]
            elif node.module.startswith("fer_edge."):
                found.append((node.lineno, node.module))
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_package_has_a_layer() -> None:
    parts = {stem(p.relative_to(PACKAGE).parts[0]) for p in modules()}
    unknown = parts - set(ORDER) - TOP
    assert not unknown, f"packages without a layer in docs/architecture.md: {sorted(unknown)}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_from_a_higher_layer(path: Path) -> None:
    mine = stem(path.relative_to(PACKAGE).parts[0])
    if mine in TOP:
        return
    rank = ORDER.index(mine)
    upward = [f"line {line}: {target}" for line, target in imports_of(path)
              if part_of(target) not in TOP and ORDER.index(part_of(target)) > rank]
    assert not upward, f"{path.relative_to(PACKAGE)} ({mine}) imports a higher layer: {upward}"


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from fer_edge.camera.pipeline import x\n", encoding="utf-8")
    assert imports_of(bad) == [(2, "fer_edge.camera.pipeline")]
    assert ORDER.index(part_of("fer_edge.camera.pipeline")) > ORDER.index("core")
