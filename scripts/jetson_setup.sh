#!/usr/bin/env bash
# fer-edge on a Jetson (JetPack 6; JetPack 5 works with --pycuda).
#
# Creates a virtual environment WITH system site packages, so the TensorRT Python bindings and
# the GStreamer-enabled OpenCV that ship with JetPack are the ones fer-edge uses, then installs
# fer-edge without pulling a pip OpenCV wheel (which would shadow JetPack's and lose GStreamer,
# i.e. CSI cameras) and without torch (training happens elsewhere).
#
# Usage: scripts/jetson_setup.sh [--venv DIR] [--pycuda] [--source DIR]
set -euo pipefail

VENV="${HOME}/fer-edge-venv"
BINDING="cuda-python"
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --venv) VENV="$2"; shift 2 ;;
    --pycuda) BINDING="pycuda"; shift ;;
    --source) SOURCE="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

if [[ ! -f /etc/nv_tegra_release ]]; then
  echo "warning: /etc/nv_tegra_release not found; this does not look like a Jetson" >&2
fi

# JetPack's pieces, from apt (already there on a full JetPack install).
python3 -c "import tensorrt" 2>/dev/null || {
  echo "TensorRT's Python bindings are missing: sudo apt install python3-libnvinfer (part of JetPack)" >&2; exit 1; }
python3 - <<'PY' || echo "warning: the system OpenCV has no GStreamer; sudo apt install python3-opencv (JetPack's)" >&2
import cv2, re, sys
sys.exit(0 if re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()) else 1)
PY

python3 -m venv --system-site-packages "${VENV}"
# shellcheck disable=SC1091
source "${VENV}/bin/activate"
python -m pip install --upgrade pip

# fer-edge's light runtime dependencies, then fer-edge itself with --no-deps, so pip never
# installs opencv-python(-headless) or torch into this venv.
python -m pip install "numpy>=1.24,<2" "onnx>=1.15" "typer>=0.12" "rich>=13" "matplotlib>=3.7"
# ONNX Runtime: NVIDIA publishes Jetson wheels (with the CUDA and TensorRT providers) for each
# JetPack; the PyPI CPU wheel works too. Keep whichever is already installed.
python -c "import onnxruntime" 2>/dev/null || python -m pip install "onnxruntime>=1.17"
if [[ "${BINDING}" == "pycuda" ]]; then
  python -m pip install "pycuda>=2022.1"
else
  # cuda-python must match JetPack's CUDA major version (JetPack 6: CUDA 12).
  python -m pip install "cuda-python>=12,<13"
fi
python -m pip install --no-deps -e "${SOURCE}"

# A pip OpenCV in the venv would shadow JetPack's; remove it if something pulled one in.
python -m pip uninstall -y opencv-python opencv-python-headless opencv-contrib-python 2>/dev/null || true

# The YuNet face detector for `fer-edge run` (OpenCV Zoo, MIT, 230 KB): downloaded into the cache
# dir and accepted only with its pinned SHA-256. Offline: copy the file over and run
# `fer-edge fetch-detector --from-file face_detection_yunet_2026may.onnx`.
fer-edge fetch-detector || echo "YuNet not fetched: run falls back to Haar until fetch-detector succeeds"

echo
fer-edge info || true
echo
echo "done: source ${VENV}/bin/activate, then see docs/jetson.md (ONNX -> engine -> bench)"
