"""scripts/jetson_setup.sh picks the CUDA binding and ONNX Runtime from the board's files, and
puts the face detector where scripts/fer-edge.service finds it.

The board is faked: version.json and nv_tegra_release through the script's environment
overrides, and a fake ``python3`` first on PATH that records every pip command instead of
installing (its venv gets the same fake as ``python`` and a fake ``fer-edge``). The fake
``fer-edge`` records its calls; with ``FAKE_YUNET`` set, ``fetch-detector`` is the real command,
its download played by the pinned YuNet file from the shared data (a local ``--from-file``).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import pytest
from conftest import REPO, SHARED_DATA

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
if [[ "$1" == fetch-detector && "$2" != --help && -n "${FAKE_YUNET:-}" ]]; then
  [[ "$*" == *--from-file* ]] || set -- "$@" --from-file "$FAKE_YUNET"  # the download
  exec "$FAKE_REAL_PYTHON" -m fer_edge "$@"
fi
exit 0
"""

FAKE_SUDO = r"""#!/usr/bin/env bash
echo "sudo $*" >> "$FAKE_LOG"
exit 1
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
    for name, text in (("python3", FAKE_PYTHON), ("fer-edge", FAKE_FER_EDGE), ("sudo", FAKE_SUDO)):
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
        "FAKE_IMPORTABLE": "tensorrt cv2 ensurepip",
        "FAKE_REAL_PYTHON": sys.executable,
        "PYTHONPATH": str(REPO),
        "FER_EDGE_NV_TEGRA_RELEASE": str(release_file),
        "FER_EDGE_CUDA_VERSION_JSON": str(json_file),
        "FER_EDGE_STATE_DIR": str(tmp_path / "var-lib-fer-edge"),
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
    run = run_setup(tmp_path, release, version_json(cuda), env={"FAKE_IMPORTABLE": "cv2 ensurepip"})
    assert run.code == 2 and "sudo apt install python3-libnvinfer" in run.stderr
    assert not (tmp_path / "venv").exists()


def test_missing_ensurepip_names_the_venv_package_before_the_venv(tmp_path: Path) -> None:
    release, cuda = JETPACK["6.2"]
    run = run_setup(tmp_path, release, version_json(cuda), env={"FAKE_IMPORTABLE": "tensorrt cv2"})
    assert run.code == 2
    errors = run.stderr.strip().splitlines()
    assert len(errors) == 1 and "ensurepip" in errors[0], run.stderr
    assert errors[0].endswith("sudo apt install python3.10-venv")  # the fake python3 is 3.10.12
    assert not (tmp_path / "venv").exists() and run.pip() == []


def fetches(run: Run) -> List[str]:
    return [line for line in run.log if line.startswith("fer-edge fetch-detector") and "--help" not in line]


def test_fetch_detector_runs_only_where_the_command_exists(tmp_path: Path) -> None:
    release, cuda = JETPACK["6.2"]
    run = run_setup(tmp_path, release, version_json(cuda))
    state = tmp_path / "var-lib-fer-edge"
    assert fetches(run)[0] == f"fer-edge fetch-detector --out {state}/face_detection_yunet_2026may.onnx"
    assert "fer-edge info" in run.log
    run = run_setup(tmp_path, release, version_json(cuda), env={"FAKE_NO_FETCH": "1"})
    assert run.code == 0, run.stderr
    assert "fer-edge fetch-detector --help" in run.log and fetches(run) == []


def test_a_state_dir_this_user_cannot_write_goes_through_sudo_and_is_not_fatal(tmp_path: Path) -> None:
    release, cuda = JETPACK["6.2"]
    (tmp_path / "a-file").write_text("")
    state = tmp_path / "a-file" / "fer-edge"  # mkdir fails even for root
    run = run_setup(tmp_path, release, version_json(cuda), env={"FER_EDGE_STATE_DIR": str(state)})
    assert run.code == 0, run.stderr
    assert f"sudo install -d -m 755 {state}" in run.log
    assert f"YuNet not fetched: run falls back to Haar until fer-edge fetch-detector --out {state}/" in run.stdout
    assert "fer-edge info" in run.log


UNIT = REPO / "scripts" / "fer-edge.service"
UNIT_STATE_DIR = "/var/lib/fer-edge"


def unit_settings(text: str) -> Dict[str, List[str]]:
    """``Key=value`` lines of a systemd unit, repeated keys kept in order (comments skipped)."""
    settings: Dict[str, List[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def documented_environment_file(text: str) -> Dict[str, str]:
    """The /etc/default/fer-edge the unit's header shows (``#   FER_EDGE_X=...`` lines)."""
    found: Dict[str, str] = {}
    for line in text.splitlines():
        body = line.lstrip("#").strip()
        if body.startswith("FER_EDGE_") and "=" in body:
            key, value = body.split("=", 1)
            found[key] = value.split("  #")[0].strip()
    return found


@pytest.mark.skipif(not (SHARED_DATA / "face_detection_yunet.onnx").is_file(), reason="needs the shared YuNet file")
def test_the_service_finds_the_detector_set_up_fetched_and_run_takes_its_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer.main

    from fer_edge.camera.detector_file import YUNET_SHA256, find_detector
    from fer_edge.cli import app
    from fer_edge.core.files import file_sha256

    release, cuda = JETPACK["6.2"]
    state = tmp_path / "var-lib-fer-edge"
    yunet = str(SHARED_DATA / "face_detection_yunet.onnx")
    run = run_setup(tmp_path, release, version_json(cuda), env={"FAKE_YUNET": yunet})
    assert run.code == 0, run.stdout + run.stderr
    assert "YuNet not fetched" not in run.stdout

    text = UNIT.read_text()
    settings = unit_settings(text)
    environment = dict(value.split("=", 1) for value in settings.get("Environment", []))
    environment.update(documented_environment_file(text))

    def here(value: str) -> str:  # the unit's /var/lib/fer-edge is the set-up's state dir here
        return value.replace(UNIT_STATE_DIR, str(state))

    # The detector `run` picks up under the service's environment is the file set-up installed.
    monkeypatch.setenv("FER_EDGE_CACHE_DIR", here(environment["FER_EDGE_CACHE_DIR"]))
    options = shlex.split(here(environment["FER_EDGE_OPTIONS"]))
    explicit = options[options.index("--detector-model") + 1] if "--detector-model" in options else None
    detector = find_detector(Path(explicit) if explicit else None)
    assert detector is not None and detector.is_file(), f"the unit names no detector set-up put there: {detector}"
    assert file_sha256(detector) == YUNET_SHA256
    assert (tmp_path / ".cache" / "fer-edge" / detector.name).is_file(), "the user's own copy, for runs by hand"

    # ExecStart, with the options of the documented EnvironmentFile, parses as `fer-edge run`.
    exec_start = shlex.split(here(settings["ExecStart"][0]).replace("$FER_EDGE_OPTIONS", " ".join(options)))
    assert Path(exec_start[0]).name == "fer-edge" and exec_start[1] == "run"
    run_command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    known = {opt for param in run_command.params for opt in param.opts}
    assert [arg for arg in exec_start[2:] if arg.startswith("--") and arg not in known] == []
    monkeypatch.setenv("FER_EDGE_SOURCE", environment["FER_EDGE_SOURCE"])
    context = run_command.make_context("run", exec_start[2:])
    assert Path(context.params["log"]) == state / "mood.db"  # a str under older Typer (Python 3.8), a Path since
