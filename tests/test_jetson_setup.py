"""scripts/jetson_setup.sh picks the CUDA binding and ONNX Runtime from the board's files.

The board is faked: version.json and nv_tegra_release through the script's environment
overrides, and a fake ``python3`` first on PATH that records every pip command instead of
installing (its venv gets the same fake as ``python`` and a fake ``fer-edge``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import pytest
from conftest import REPO

SCRIPT = REPO / "scripts" / "jetson_setup.sh"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

FAKE_PYTHON = r"""#!/usr/bin/env bash
# Records its arguments; plays a Python whose pip installs nothing.
echo "python $*" >> "$FAKE_LOG"
case "$1" in
  -V) echo "Python 3.10.12" ;;
  -c) for mod in $FAKE_IMPORTABLE; do [[ "$2" == *"import $mod"* ]] && exit 0; done; exit 1 ;;
  -) cat > /dev/null ;;
  -m)
    if [[ "$2" == venv ]]; then
      dir="${@: -1}"
      mkdir -p "$dir/bin"
      cp "$0" "$dir/bin/python"
      cp "$(dirname "$0")/fer-edge" "$dir/bin/fer-edge"
      printf 'export PATH="%s/bin:$PATH"\n' "$dir" > "$dir/bin/activate"
    elif [[ "$2" == pip && -n "${FAKE_PIP_FAIL:-}" && "$*" == *"$FAKE_PIP_FAIL"* ]]; then
      exit 1
    fi ;;
esac
exit 0
"""

FAKE_FER_EDGE = r"""#!/usr/bin/env bash
echo "fer-edge $*" >> "$FAKE_LOG"
if [[ "$1" == fetch-detector && "${FAKE_NO_FETCH:-}" == 1 ]]; then exit 2; fi
exit 0
"""

JETPACK = {
    "5.1.2": ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64\n", "11.4.315"),
    "6.0": ("# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64\n", "12.2.140"),
    "6.2": ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n", "12.6.68"),
}


def version_json(version: str) -> str:
    # The layout of /usr/local/cuda/version.json: one key per CUDA component, "cuda" first.
    components = {
        "cuda": {"name": "CUDA SDK", "version": version},
        "cuda_cudart": {"name": "CUDA Runtime (cudart)", "version": "99.9.1"},
    }
    return json.dumps(components, indent=3).replace('":', '" :') + "\n"


class Run(NamedTuple):
    code: int
    stdout: str
    stderr: str
    log: List[str]

    def pip(self) -> List[str]:
        return [line[len("python -m pip "):] for line in self.log if line.startswith("python -m pip ")]


def run_setup(
    tmp_path: Path,
    release: Optional[str],
    cuda_json: Optional[str],
    *args: str,
    env: Optional[Dict[str, str]] = None,
) -> Run:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("python3", FAKE_PYTHON), ("fer-edge", FAKE_FER_EDGE)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    release_file, json_file = tmp_path / "nv_tegra_release", tmp_path / "version.json"
    if release is not None:
        release_file.write_text(release)
    if cuda_json is not None:
        json_file.write_text(cuda_json)
    log = tmp_path / "calls.log"
    log.write_text("")
    full_env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FAKE_LOG": str(log),
        "FAKE_IMPORTABLE": "tensorrt cv2",
        "FER_EDGE_NV_TEGRA_RELEASE": str(release_file),
        "FER_EDGE_CUDA_VERSION_JSON": str(json_file),
        **(env or {}),
    }
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--venv", str(tmp_path / "venv"), *args],
        env=full_env, capture_output=True, text=True, timeout=60, check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, log.read_text().splitlines())


def installs(run: Run, package: str) -> List[str]:
    return [line for line in run.pip() if line.startswith("install") and package in line]


@pytest.mark.parametrize(
    ("jetpack", "binding"),
    [("6.0", "cuda-python>=12.2,<12.3"), ("6.2", "cuda-python>=12.6,<12.7"), ("5.1.2", "pycuda>=2022.1")],
)
def test_binding_follows_the_boards_cuda(tmp_path: Path, jetpack: str, binding: str) -> None:
    release, cuda = JETPACK[jetpack]
    run = run_setup(tmp_path, release, version_json(cuda))
    assert run.code == 0, run.stderr
    assert [line for line in run.pip() if binding in line], run.pip()
    assert not [line for line in run.pip() if "cuda-python" in line and binding not in line]
    constraints = "jetpack5-constraints.txt" if jetpack.startswith("5") else "jetpack6-constraints.txt"
    assert all(constraints in line for line in installs(run, "numpy")), run.pip()
    assert any(line.startswith("install --no-deps -e") for line in run.pip())
    assert not [line for line in run.pip() if line.startswith("install") and "opencv-python" in line]


def test_jetpack6_gets_the_gpu_onnxruntime_for_its_cuda(tmp_path: Path) -> None:
    release, cuda = JETPACK["6.2"]
    run = run_setup(tmp_path, release, version_json(cuda))
    ort = [line for line in run.pip() if line.startswith("install") and "onnxruntime" in line]
    assert ort == ["install --extra-index-url https://pypi.jetson-ai-lab.io/jp6/cu126 onnxruntime-gpu"]
    # The other build is removed first: both install the module `onnxruntime`.
    assert "uninstall -y onnxruntime onnxruntime-gpu" in run.pip()


def test_jetpack6_falls_back_to_the_cpu_build_when_the_index_fails(tmp_path: Path) -> None:
    release, cuda = JETPACK["6.0"]
    run = run_setup(tmp_path, release, version_json(cuda), env={"FAKE_PIP_FAIL": "onnxruntime-gpu"})
    assert run.code == 0, run.stderr
    assert "no onnxruntime-gpu from https://pypi.jetson-ai-lab.io/jp6/cu122" in run.stdout
    assert installs(run, "onnxruntime")[-1].endswith("jetpack6-constraints.txt onnxruntime")


def test_jetpack5_gets_the_cpu_build_unless_given_nvidias_wheel(tmp_path: Path) -> None:
    release, cuda = JETPACK["5.1.2"]
    run = run_setup(tmp_path, release, version_json(cuda))
    assert installs(run, "onnxruntime")[-1].endswith("jetpack5-constraints.txt onnxruntime")
    wheel = "/tmp/onnxruntime_gpu-1.16.0-cp38-cp38-linux_aarch64.whl"
    run = run_setup(tmp_path, release, version_json(cuda), "--ort-wheel", wheel)
    assert installs(run, "onnxruntime") == [f"install {wheel}"]


def test_without_version_json_the_l4t_release_names_the_cuda(tmp_path: Path) -> None:
    run = run_setup(tmp_path, JETPACK["6.2"][0], None)
    assert run.code == 0, run.stderr
    assert "L4T 36.4 ships CUDA 12.6" in run.stdout
    assert installs(run, "cuda-python>=12.6,<12.7")


def test_cuda_flag_overrides_the_files(tmp_path: Path) -> None:
    run = run_setup(tmp_path, JETPACK["6.2"][0], version_json("12.6.68"), "--cuda", "12.2")
    assert installs(run, "cuda-python>=12.2,<12.3")


@pytest.mark.parametrize(
    ("release", "cuda_json", "expect"),
    [
        (JETPACK["6.2"][0], '{"cuda": "twelve"}', "cannot read the CUDA version from"),
        (JETPACK["6.2"][0], "", "cannot read the CUDA version from"),
        ("Ubuntu 22.04\n", None, "names no known JetPack"),
        (None, None, "is missing and"),
        ("# R38 (release), REVISION: 2.0\n", None, "L4T '38.2'"),
    ],
)
def test_unreadable_cuda_version_is_one_line_with_the_fix(
    tmp_path: Path, release: Optional[str], cuda_json: Optional[str], expect: str
) -> None:
    run = run_setup(tmp_path, release, cuda_json)
    assert run.code == 2
    errors = run.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: "), run.stderr
    assert expect in errors[0] and "--cuda X.Y" in errors[0]
    assert run.pip() == [], "nothing is installed when the CUDA version is unknown"


def test_cuda_python_is_refused_on_cuda_11(tmp_path: Path) -> None:
    release, cuda = JETPACK["5.1.2"]
    run = run_setup(tmp_path, release, version_json(cuda), "--binding", "cuda-python")
    assert run.code == 2 and "use --binding pycuda" in run.stderr
    assert run.pip() == []


def test_missing_tensorrt_stops_before_the_venv(tmp_path: Path) -> None:
    release, cuda = JETPACK["6.2"]
    run = run_setup(tmp_path, release, version_json(cuda), env={"FAKE_IMPORTABLE": "cv2"})
    assert run.code == 2 and "sudo apt install python3-libnvinfer" in run.stderr
    assert not (tmp_path / "venv").exists()


def test_fetch_detector_runs_only_where_the_command_exists(tmp_path: Path) -> None:
    release, cuda = JETPACK["6.2"]
    run = run_setup(tmp_path, release, version_json(cuda))
    assert "fer-edge fetch-detector" in run.log and "fer-edge info" in run.log
    run = run_setup(tmp_path, release, version_json(cuda), env={"FAKE_NO_FETCH": "1"})
    assert run.code == 0, run.stderr
    assert "fer-edge fetch-detector --help" in run.log and "fer-edge fetch-detector" not in run.log
