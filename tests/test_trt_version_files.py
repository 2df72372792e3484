"""``build-engine --print-trtexec`` without importable TensorRT bindings: the version comes from
NvInferVersion.h or dpkg (JetPack installs both), else a one-line refusal asking for --trt-version.

The header texts are the version defines of NVIDIA/TensorRT's include/NvInferVersion.h on the
branches named beside them (comments trimmed): plain numbers up to 10.12, names of other defines
from 10.13 on.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from test_trt_build import build, fer_model

from fer_edge.build import trt_version_files
from fer_edge.build.trt_version_files import installed_trt_version, version_from_dpkg, version_from_header
from fer_edge.model.engine_sidecar import read_sidecar

HEADER_8_6 = """#ifndef NV_INFER_VERSION_H
#define NV_INFER_VERSION_H

#define NV_TENSORRT_MAJOR 8 //!< TensorRT major version.
#define NV_TENSORRT_MINOR 6 //!< TensorRT minor version.
#define NV_TENSORRT_PATCH 1 //!< TensorRT patch version.
#define NV_TENSORRT_BUILD 5 //!< TensorRT build number.

#define NV_TENSORRT_LWS_MAJOR 0 //!< TensorRT LWS major version.
#define NV_TENSORRT_SONAME_MAJOR 8 //!< Shared object library major version number.
#define NV_TENSORRT_RELEASE_TYPE NV_TENSORRT_RELEASE_TYPE_GENERAL_AVAILABILITY //!< TensorRT release type
#endif // NV_INFER_VERSION_H
"""  # release/8.6

HEADER_10_3 = """#define NV_TENSORRT_MAJOR 10 //!< TensorRT major version.
#define NV_TENSORRT_MINOR 3 //!< TensorRT minor version.
#define NV_TENSORRT_PATCH 0 //!< TensorRT patch version.
#define NV_TENSORRT_BUILD 26 //!< TensorRT build number.
#define NV_TENSORRT_LWS_MAJOR 0 //!< TensorRT LWS major version.
"""  # release/10.3 (JetPack 6.1/6.2)

HEADER_11_1 = """#ifndef NV_INFER_VERSION_H
#define NV_INFER_VERSION_H

#define TRT_MAJOR_ENTERPRISE 11
#define TRT_MINOR_ENTERPRISE 1
#define TRT_PATCH_ENTERPRISE 0
#define TRT_BUILD_ENTERPRISE 106

#define NV_TENSORRT_MAJOR TRT_MAJOR_ENTERPRISE //!< TensorRT major version.
#define NV_TENSORRT_MINOR TRT_MINOR_ENTERPRISE //!< TensorRT minor version.
#define NV_TENSORRT_PATCH TRT_PATCH_ENTERPRISE //!< TensorRT patch version.
#define NV_TENSORRT_BUILD TRT_BUILD_ENTERPRISE //!< TensorRT build number.
"""  # main (11.1); release/10.13 onwards have the same form


@pytest.mark.parametrize(
    ("text", "version"),
    [(HEADER_8_6, "8.6.1"), (HEADER_10_3, "10.3.0"), (HEADER_11_1, "11.1.0"), ("#define FOO 1\n", None), ("", None)],
)
def test_header_versions_in_both_forms(text: str, version: str | None) -> None:
    assert version_from_header(text) == version


def test_dpkg_versions() -> None:
    assert version_from_dpkg("10.3.0.30-1+cuda12.5") == "10.3.0.30"  # JetPack 6.1/6.2's tensorrt
    assert version_from_dpkg("8.5.2-1+cuda11.4") == "8.5.2"  # JetPack 5.1's libnvinfer-bin
    assert version_from_dpkg("") is None  # a package dpkg knows but has not installed


def test_first_readable_header_then_dpkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty, header = tmp_path / "empty.h", tmp_path / "NvInferVersion.h"
    empty.write_text("// nothing\n")
    header.write_text(HEADER_10_3)
    assert installed_trt_version([tmp_path / "absent.h", empty, header]) == ("10.3.0", str(header))
    monkeypatch.setattr(trt_version_files, "dpkg_version", lambda p: "8.5.2.2" if p == "libnvinfer-bin" else None)
    assert installed_trt_version([empty]) == ("8.5.2.2", "dpkg package libnvinfer-bin")
    monkeypatch.setattr(trt_version_files, "dpkg_version", lambda p: None)
    assert installed_trt_version([empty]) is None


@pytest.fixture
def no_bindings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No importable TensorRT, no header, no dpkg package; returns where a header may be put."""
    header = tmp_path / "include" / "NvInferVersion.h"
    monkeypatch.setattr("fer_edge.runtime.trt_api.tensorrt_version", lambda: None)
    monkeypatch.setattr(trt_version_files, "NVINFER_HEADERS", (header,))
    monkeypatch.setattr(trt_version_files, "dpkg_version", lambda package: None)
    return header


def test_print_trtexec_reads_the_header_when_the_bindings_do_not_import(no_bindings: Path, tmp_path: Path) -> None:
    no_bindings.parent.mkdir()
    no_bindings.write_text(HEADER_8_6)
    out = tmp_path / "m.fp16.engine"
    code, output = build(str(fer_model(tmp_path)), "--precision", "fp16", "--out", str(out), "--print-trtexec")
    assert code == 0, output
    args = shlex.split(next(x for x in output.splitlines() if x.startswith("trtexec")))
    assert "--memPoolSize=workspace:256" in args  # 8.x reads MiB without a unit; 10.3 would say 256M
    assert read_sidecar(out).tensorrt_version == "8.6.1"


def test_print_trtexec_for_strongly_typed_11_from_the_header(no_bindings: Path, tmp_path: Path) -> None:
    no_bindings.parent.mkdir()
    no_bindings.write_text(HEADER_11_1)
    out = tmp_path / "m.fp16.engine"
    code, output = build(str(fer_model(tmp_path)), "--precision", "fp16", "--out", str(out), "--print-trtexec")
    assert code == 0, output
    assert "--stronglyTyped" in output and read_sidecar(out).tensorrt_version == "11.1.0"


def test_print_trtexec_refuses_when_nothing_names_a_version(no_bindings: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.fp16.engine"
    code, output = build(str(fer_model(tmp_path)), "--precision", "fp16", "--out", str(out), "--print-trtexec")
    assert code == 2 and len(output.strip().splitlines()) == 1, output
    assert "NvInferVersion.h" in output and "--trt-version X.Y" in output
    assert not out.exists() and not Path(str(out) + ".json").exists()
    code, output = build(str(fer_model(tmp_path)), "--precision", "fp16", "--out", str(out), "--print-trtexec",
                         "--trt-version", "10.3")
    assert code == 0, output
    assert read_sidecar(out).tensorrt_version == "10.3"


def test_trt_version_is_checked_and_only_for_print_trtexec(no_bindings: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.fp16.engine"
    code, output = build(str(fer_model(tmp_path)), "--precision", "fp16", "--out", str(out), "--print-trtexec",
                         "--trt-version", "ten")
    assert code == 2 and "cannot read the TensorRT version 'ten'" in output
    code, output = build(str(fer_model(tmp_path)), "--precision", "fp16", "--out", str(out), "--trt-version", "10.3")
    assert code == 2 and "--trt-version goes with --print-trtexec" in output


def test_print_trtexec_for_dla_on_11_4_1_converts_and_has_no_precision_flag(
    no_bindings: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m.fp16.engine"
    code, output = build(str(fer_model(tmp_path)), "--precision", "fp16", "--dla", "0", "--batch", "8",
                         "--out", str(out), "--print-trtexec", "--trt-version", "11.4.1")
    assert code == 0, output
    convert, build_line = next(x for x in output.splitlines() if "trtexec" in x).split(" && ")
    args = shlex.split(build_line)
    assert "convert_to_fp16" in convert and f"--onnx={tmp_path / 'm.fp16.onnx'}" in args
    assert {"--useDLACore=0", "--allowGPUFallback", "--stronglyTyped"} <= set(args) and "--fp16" not in args
    code, output = build(str(fer_model(tmp_path)), "--precision", "fp16", "--dla", "0", "--batch", "8",
                         "--out", str(out), "--print-trtexec", "--trt-version", "11.3")
    assert code == 2 and "no DLA support" in output
