"""The small shared mechanisms: optional imports, first_line, file hash, cache folder, Markdown tables, plots."""

from __future__ import annotations

import builtins
import hashlib
import sys
from pathlib import Path
from typing import Any

import pytest

from fer_edge.core.errors import FerEdgeError, first_line
from fer_edge.core.files import cache_dir, file_sha256
from fer_edge.core.markdown import markdown_table
from fer_edge.core.optional import EXTRAS, import_cv2, optional_import


def _hide(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails as if it were absent


@pytest.mark.parametrize("module", sorted(EXTRAS))
def test_a_missing_extra_is_one_line_naming_its_install(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    _hide(monkeypatch, module)
    with pytest.raises(FerEdgeError) as exc:
        optional_import(module, "this feature")
    package, install = EXTRAS[module]
    assert str(exc.value) == f"{package} is not installed (this feature needs it): {install}"
    assert "\n" not in str(exc.value)


def test_opencv_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "cv2")
    expected = r"OpenCV is not installed \(the camera pipeline needs it\).*fer-edge\[opencv\]"
    with pytest.raises(FerEdgeError, match=expected):
        import_cv2()


def test_an_installed_but_broken_library_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def failing_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "psycopg":
            raise ImportError("libpq.so.5: cannot open shared object file\nmore", name="psycopg.pq._pq_ctypes")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "psycopg", raising=False)
    monkeypatch.setattr(builtins, "__import__", failing_import)
    expected = (r"^psycopg 3 is installed but does not import \(libpq\.so\.5: cannot open shared object file\); "
                r"reinstall one build: pip install 'fer-edge\[fleet\]'$")
    with pytest.raises(FerEdgeError, match=expected):
        optional_import("psycopg")


def test_a_submodule_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import os.path

    monkeypatch.setitem(EXTRAS, "os", ("os", "nothing"))
    assert optional_import("os.path") is os.path


def test_first_line() -> None:
    assert first_line(ValueError("  first\nsecond\n")) == "first"
    assert first_line(KeyError()) == "KeyError" and first_line(RuntimeError("   ")) == "RuntimeError"


def test_file_sha256_reads_in_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    (tmp_path / "f").write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert file_sha256(tmp_path / "f", chunk=1000) == file_sha256(str(tmp_path / "f")) == expected


def test_cache_dir_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FER_EDGE_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("FER_EDGE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "fer-edge"
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # empty means unset (XDG spec), not the working directory
    assert cache_dir() == Path.home() / ".cache" / "fer-edge"


def test_markdown_table() -> None:
    text = markdown_table(["name", "ms"], [["a|b", 1.5], ["two\nlines", 2]], align="lr")
    assert text.splitlines() == ["| name | ms |", "|---|---:|", "| a\\|b | 1.5 |", "| two lines | 2 |"]
    assert markdown_table(["x", "y", "z"], [], align="c").splitlines()[1] == "|:---:|---|---|"
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        markdown_table(["x", "y", "z"], [[1, 2]])
    with pytest.raises(ValueError, match="align"):
        markdown_table(["x"], [], align="q")


def test_save_figure_is_atomic_and_closes(tmp_path: Path) -> None:
    from fer_edge.core.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    out = save_figure(fig, tmp_path / "a.svg", fmt=None)  # the suffix names the format
    assert out.read_text().lstrip().startswith("<?xml") and not plt.fignum_exists(fig.number)
    fig, _ = plt.subplots()
    save_figure(fig, tmp_path / "b.out")  # PNG unless asked otherwise
    assert (tmp_path / "b.out").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.svg", "b.out"]
