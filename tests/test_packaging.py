"""Package metadata: ONNX Runtime only through the cpu/gpu extras, the JetPack pins, Python >= 3.8."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest
from conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli below 3.11
    tomllib = pytest.importorskip("tomli")

ORT_BUILDS = {"onnxruntime", "onnxruntime-gpu"}


def project() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]  # type: ignore[no-any-return]


def name_of(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement."""
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def test_core_dependencies_have_no_onnxruntime() -> None:
    core = {name_of(r) for r in project()["dependencies"]}
    assert not core & ORT_BUILDS, core


def test_gpu_and_opencv_extras_pull_only_the_gpu_build() -> None:
    extras = project()["optional-dependencies"]
    pulled = {name_of(r) for extra in ("gpu", "opencv") for r in extras[extra]}
    pulled |= {name_of(r) for r in project()["dependencies"]}
    assert "onnxruntime-gpu" in pulled and "onnxruntime" not in pulled
    assert {name_of(r) for r in extras["cpu"]} == {"onnxruntime"}


def test_no_extra_but_cpu_pulls_the_cpu_build() -> None:
    extras = project()["optional-dependencies"]
    with_cpu_build = sorted(name for name, reqs in extras.items() if "onnxruntime" in {name_of(r) for r in reqs})
    assert with_cpu_build == ["cpu"]


def test_jetpack_binding_extras_match_their_cuda_minor() -> None:
    extras = project()["optional-dependencies"]
    assert extras["jetpack6-cuda122"] == ["cuda-python>=12.2,<12.3"]
    assert extras["jetpack6-cuda126"] == ["cuda-python>=12.6,<12.7"]
    assert [name_of(r) for r in extras["jetpack5"]] == ["pycuda"]


def test_python_38_is_allowed() -> None:
    assert project()["requires-python"] == ">=3.8"


@pytest.mark.parametrize(("name", "python"), [("jetpack5", "3.8"), ("jetpack6", "3.10")])
def test_constraint_files_pin_the_device_side(name: str, python: str) -> None:
    lines = (REPO / "scripts" / f"{name}-constraints.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert {"numpy", "onnx", "onnxruntime", "opencv-python-headless", "matplotlib"} <= set(pins)
    assert f"--python-version {python}" in "\n".join(lines), "the file says how its pins were checked"
    assert int(pins["numpy"].split(".")[0]) == 1, "JetPack's apt OpenCV is built against numpy 1.x"
