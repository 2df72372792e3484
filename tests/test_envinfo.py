"""Environment report: pure parsers over sample file contents, and the report on this machine."""

from __future__ import annotations

import sys

from fer_edge.core.machine import (
    mem_total_bytes,
    parse_cpu_flags,
    parse_cpu_mhz,
    parse_cpu_model,
    parse_device_tree_model,
    parse_nvidia_smi,
)
from fer_edge.runtime.environment import (
    environment_report,
    environment_warnings,
    jetson_dla_cores,
    opencv_has_gstreamer,
    parse_nv_tegra_release,
)

JETPACK6_RELEASE = (
    "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
    "DATE: Wed Jan  8 01:49:37 UTC 2025\n"
    "# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n"
)
JETPACK5_RELEASE = (
    "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1\n"
)


def test_parse_nv_tegra_release() -> None:
    assert parse_nv_tegra_release(JETPACK6_RELEASE) == {
        "l4t": "36.4.3",
        "jetpack": "6.1/6.2",
        "board": "generic",
    }
    assert parse_nv_tegra_release(JETPACK5_RELEASE) == {
        "l4t": "35.4.1",
        "jetpack": "5.1.2",
        "board": "t186ref",
    }
    assert parse_nv_tegra_release("# R99 (release), REVISION: 1.0")["jetpack"] == "unknown"  # type: ignore[index]
    assert parse_nv_tegra_release("Ubuntu 22.04") is None


def test_parse_device_tree_model() -> None:
    assert parse_device_tree_model(b"NVIDIA Jetson AGX Orin Developer Kit\x00") == (
        "NVIDIA Jetson AGX Orin Developer Kit"
    )
    assert parse_device_tree_model(b"\x00") is None


def test_jetson_dla_cores() -> None:
    assert jetson_dla_cores("NVIDIA Jetson AGX Orin Developer Kit") == 2
    # Orin NX: 16 GB has two DLA cores, 8 GB one; the device tree may not say which module.
    nx = "NVIDIA Jetson Orin NX Engineering Reference Developer Kit"
    assert jetson_dla_cores(nx, mem_total_bytes("MemTotal:       15622232 kB\n")) == 2
    assert jetson_dla_cores(nx, mem_total_bytes("MemTotal:        7620284 kB\n")) == 1
    assert jetson_dla_cores(nx) is None
    assert jetson_dla_cores("NVIDIA Jetson Orin NX (8GB ram)") == 1
    assert jetson_dla_cores("NVIDIA Jetson Orin Nano Developer Kit") == 0
    assert jetson_dla_cores("Raspberry Pi 5") is None
    assert jetson_dla_cores(None) is None


def test_parse_nvidia_smi() -> None:
    text = "NVIDIA H100 80GB HBM3, 9.0, 550.54.15, 81559 MiB\nNVIDIA A10, 8.6, 550.54.15, 23028 MiB\n"
    gpus = parse_nvidia_smi(text)
    assert gpus[0] == {
        "name": "NVIDIA H100 80GB HBM3",
        "compute_capability": "9.0",
        "driver": "550.54.15",
        "memory": "81559 MiB",
    }
    assert [g["compute_capability"] for g in gpus] == ["9.0", "8.6"]
    assert parse_nvidia_smi("") == []


def test_opencv_gstreamer_detection() -> None:
    with_gst = (
        "  Video I/O:\n    DC1394:                      NO\n    FFMPEG:                      YES\n"
        "    GStreamer:                   YES (1.20.3)\n"
        "    v4l/v4l2:                    YES (linux/videodev2.h)\n"
    )
    without = "  Video I/O:\n    FFMPEG:                      YES\n    GStreamer:                   NO\n"
    assert opencv_has_gstreamer(with_gst)
    assert not opencv_has_gstreamer(without)
    assert not opencv_has_gstreamer("no video section at all")


def test_parse_cpu_model() -> None:
    assert parse_cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"
    assert parse_cpu_model("processor\t: 0\nBogoMIPS\t: 62.50\n") is None


def test_parse_cpu_flags_and_clock() -> None:
    x86 = "processor\t: 0\ncpu MHz\t\t: 2445.406\nflags\t\t: fpu avx2 fma\nprocessor\t: 1\ncpu MHz\t\t: 3200.0\n"
    assert parse_cpu_flags(x86) == ["fpu", "avx2", "fma"]
    assert parse_cpu_mhz(x86) == 3200.0  # the fastest core: a floor takes the top clock
    arm = "processor\t: 0\nFeatures\t: fp asimd asimddp\nBogoMIPS\t: 62.50\n"
    assert parse_cpu_flags(arm) == ["fp", "asimd", "asimddp"] and parse_cpu_mhz(arm) is None


def test_warnings_for_a_jetson_with_pip_opencv() -> None:
    report = {
        "jetson": {"model": "NVIDIA Jetson Orin Nano Developer Kit"},
        "opencv": {"version": "4.10.0", "gstreamer": False},
        "tensorrt": None,
        "cuda_binding": None,
    }
    warnings = environment_warnings(report)
    assert any("no GStreamer" in w and "--system-site-packages" in w for w in warnings)
    assert any("TensorRT is not importable" in w for w in warnings)
    ok = {
        "jetson": {"model": "x"},
        "opencv": {"version": "4.8.0", "gstreamer": True},
        "tensorrt": {"version": "10.3.0.30"},
        "cuda_binding": "cuda-python 12.6",
    }
    assert environment_warnings(ok) == []


def test_report_on_this_machine_does_not_import_torch() -> None:
    had_torch = "torch" in sys.modules
    report = environment_report()
    for key in (
        "fer_edge",
        "python",
        "numpy",
        "onnx",
        "onnxruntime",
        "torch",
        "tensorrt",
        "gpus",
        "jetson",
        "opencv",
        "cpu",
        "os",
        "warnings",
    ):
        assert key in report
    assert report["cpu"]["cores"] >= 1
    assert isinstance(report["warnings"], list)
    if not had_torch:
        assert "torch" not in sys.modules


def test_warnings_name_the_missing_onnxruntime_and_the_matching_binding() -> None:
    report = {
        "jetson": {"model": "x"},
        "opencv": {"version": "4.8.0", "gstreamer": True},
        "tensorrt": {"version": "10.3.0.30"},
        "cuda_binding": None,
        "cuda": {"toolkit": "12.6", "driver": "12.6"},
        "onnxruntime": None,
    }
    warnings = environment_warnings(report)
    assert any("ONNX Runtime is not installed" in w and "fer-edge[cpu]" in w for w in warnings)
    assert any("no CUDA binding" in w and "cuda-python>=12.6,<12.7" in w for w in warnings)
    report["onnxruntime"] = {"error": "ONNX Runtime is installed but does not import (libcudart.so.12)"}
    assert any("does not import" in w for w in environment_warnings(report))
