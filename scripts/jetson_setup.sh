#!/usr/bin/env bash
# fer-edge on a Jetson: JetPack 5.1 (Python 3.8, CUDA 11.4) or JetPack 6.x (Python 3.10, CUDA 12.2/12.6).
#
# Reads the board's CUDA version, creates a virtual environment WITH system site packages (so
# JetPack's TensorRT bindings and GStreamer-enabled OpenCV are the ones used), installs fer-edge's
# light dependencies at the versions CI tests for that JetPack (scripts/jetpackN-constraints.txt),
# the CUDA binding that matches the board's CUDA, and the ONNX Runtime build for the JetPack.
# No torch (training happens elsewhere) and no pip OpenCV (it would shadow JetPack's).
#
# Usage: scripts/jetson_setup.sh [--venv DIR] [--source DIR] [--cuda X.Y] [--binding cuda-python|pycuda]
#                                [--ort-wheel FILE_OR_URL | --ort-index URL | --ort-cpu]
#   --cuda X.Y      use this CUDA version instead of reading it (when /usr/local/cuda/version.json is absent)
#   --binding       force a CUDA binding (default: cuda-python of the same CUDA minor on CUDA 12, pycuda on CUDA 11)
#   --ort-wheel     install this onnxruntime-gpu wheel (e.g. NVIDIA's JetPack 5 wheel from the Jetson Zoo)
#   --ort-index     the package index serving onnxruntime-gpu for this JetPack (default on JetPack 6:
#                   the Jetson AI Lab index for its CUDA); --ort-cpu installs the CPU build from PyPI
# Environment: FER_EDGE_CUDA_VERSION_JSON, FER_EDGE_NV_TEGRA_RELEASE override the files read;
#   FER_EDGE_STATE_DIR (default /var/lib/fer-edge) is where the face detector goes for the service.
set -euo pipefail

VENV="${HOME}/fer-edge-venv"
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CUDA=""
BINDING=""
ORT_WHEEL=""
ORT_INDEX=""
ORT_CPU=0
CUDA_VERSION_JSON="${FER_EDGE_CUDA_VERSION_JSON:-/usr/local/cuda/version.json}"
NV_TEGRA_RELEASE="${FER_EDGE_NV_TEGRA_RELEASE:-/etc/nv_tegra_release}"
# scripts/fer-edge.service runs with FER_EDGE_CACHE_DIR=/var/lib/fer-edge, so `run` finds YuNet here.
STATE_DIR="${FER_EDGE_STATE_DIR:-/var/lib/fer-edge}"
YUNET_FILE="face_detection_yunet_2026may.onnx"  # fer_edge/camera/detector_file.py's YUNET_FILE

die() { echo "error: $*" >&2; exit 2; }
note() { echo "jetson_setup: $*"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --venv) VENV="$2"; shift 2 ;;
    --source) SOURCE="$2"; shift 2 ;;
    --cuda) CUDA="$2"; shift 2 ;;
    --binding) BINDING="$2"; shift 2 ;;
    --pycuda) BINDING="pycuda"; shift ;;  # older spelling
    --ort-wheel) ORT_WHEEL="$2"; shift 2 ;;
    --ort-index) ORT_INDEX="$2"; shift 2 ;;
    --ort-cpu) ORT_CPU=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

# -- what board is this ---------------------------------------------------------------------------
L4T=""
if [[ -r "${NV_TEGRA_RELEASE}" ]]; then
  # "# R36 (release), REVISION: 4.3, ..." -> 36.4
  L4T="$(sed -n 's/^# R\([0-9]*\) (release), REVISION: \([0-9]*\).*/\1.\2/p' "${NV_TEGRA_RELEASE}" | head -n 1)"
  [[ -n "${L4T}" ]] || note "warning: ${NV_TEGRA_RELEASE} has no 'R<n> (release), REVISION' line"
else
  note "warning: ${NV_TEGRA_RELEASE} not found; this does not look like a Jetson"
fi

# The CUDA each JetPack ships (NVIDIA's JetPack archive), for boards without version.json.
cuda_of_l4t() {
  case "$1" in
    35.*) echo "11.4" ;;
    36.2|36.3) echo "12.2" ;;
    36.4) echo "12.6" ;;
    *) echo "" ;;
  esac
}

if [[ -z "${CUDA}" ]]; then
  if [[ -e "${CUDA_VERSION_JSON}" ]]; then
    # {"cuda": {"name": "CUDA SDK", "version": "12.6.68"}, ...}: the first "version" is the SDK's.
    CUDA="$(tr -d '\n' < "${CUDA_VERSION_JSON}" 2>/dev/null \
      | sed -n 's/.*"cuda"[^{]*{[^}]*"version"[[:space:]]*:[[:space:]]*"\([0-9]*\.[0-9]*\)[^"]*".*/\1/p')" || true
    [[ -n "${CUDA}" ]] || die "cannot read the CUDA version from ${CUDA_VERSION_JSON} (no \"cuda\": {\"version\": ...}); \
reinstall JetPack's CUDA (sudo apt install --reinstall cuda-toolkit-*) or pass --cuda X.Y (11.4 on JetPack 5, 12.2 on 6.0, 12.6 on 6.1/6.2)"
  else
    CUDA="$(cuda_of_l4t "${L4T}")"
    [[ -n "${CUDA}" ]] || die "cannot read the CUDA version: ${CUDA_VERSION_JSON} is missing and \
${NV_TEGRA_RELEASE} names no known JetPack (L4T '${L4T:-none}'); install JetPack's CUDA (sudo apt install nvidia-jetpack) \
or pass --cuda X.Y (11.4 on JetPack 5, 12.2 on 6.0, 12.6 on 6.1/6.2)"
    note "${CUDA_VERSION_JSON} is missing; L4T ${L4T} ships CUDA ${CUDA}"
  fi
fi
[[ "${CUDA}" =~ ^([0-9]+)\.([0-9]+)$ ]] || die "--cuda must look like 12.6, got '${CUDA}'"
CUDA_MAJOR="${BASH_REMATCH[1]}"
CUDA_MINOR="${BASH_REMATCH[2]}"

case "${CUDA_MAJOR}" in
  11) JETPACK=5; CONSTRAINTS="${SOURCE}/scripts/jetpack5-constraints.txt" ;;
  12) JETPACK=6; CONSTRAINTS="${SOURCE}/scripts/jetpack6-constraints.txt" ;;
  *) die "CUDA ${CUDA} is neither JetPack 5 (11.4) nor JetPack 6 (12.x); pass --cuda X.Y if it was misread" ;;
esac

# Jetsons have no CUDA minor-version compatibility: the binding must be built for this CUDA.
if [[ -z "${BINDING}" ]]; then
  if [[ "${CUDA_MAJOR}" -ge 12 ]]; then BINDING="cuda-python"; else BINDING="pycuda"; fi
fi
case "${BINDING}" in
  cuda-python)
    [[ "${CUDA_MAJOR}" -ge 12 ]] || die "--binding cuda-python: cuda-python has no release for CUDA ${CUDA}; use --binding pycuda"
    BINDING_SPEC="cuda-python>=${CUDA_MAJOR}.${CUDA_MINOR},<${CUDA_MAJOR}.$((CUDA_MINOR + 1))" ;;
  # pycuda has no aarch64 wheels: pip compiles it against the CUDA found through PATH (nvcc).
  pycuda) BINDING_SPEC="pycuda>=2022.1" ;;
  *) die "--binding must be cuda-python or pycuda, got '${BINDING}'" ;;
esac
note "JetPack ${JETPACK} (L4T ${L4T:-unknown}), CUDA ${CUDA}: binding ${BINDING_SPEC}"

# -- JetPack's own pieces (apt), then the venv ---------------------------------------------------
python3 -c "import tensorrt" 2>/dev/null || die "TensorRT's Python bindings are missing for $(python3 -V 2>&1): \
sudo apt install python3-libnvinfer (part of JetPack)"
python3 - <<'PY' || note "warning: the system OpenCV has no GStreamer; sudo apt install python3-opencv (JetPack's)"
import cv2, re, sys
sys.exit(0 if re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()) else 1)
PY

# Ubuntu ships venv's ensurepip in its own package; without it `python3 -m venv` fails half-way.
if ! python3 -c "import ensurepip" 2>/dev/null; then
  PY_MINOR="$(python3 -V 2>&1 | sed -n 's/^Python \([0-9]*\.[0-9]*\).*/\1/p')"
  die "python3 -m venv needs ensurepip, which Ubuntu packages separately: sudo apt install python${PY_MINOR:-3}-venv"
fi
python3 -m venv --system-site-packages "${VENV}"
# shellcheck disable=SC1091
source "${VENV}/bin/activate"
python -m pip install --upgrade pip

# Light dependencies at CI's versions, then fer-edge itself with --no-deps, so pip never installs
# opencv-python(-headless) or torch into this venv.
python -m pip install -c "${CONSTRAINTS}" numpy onnx typer rich matplotlib typing_extensions

if [[ "${BINDING}" == "pycuda" ]]; then
  export PATH="/usr/local/cuda/bin:${PATH}"
fi
python -m pip install -c "${CONSTRAINTS}" "${BINDING_SPEC}"

# ONNX Runtime: one build only (the CPU and GPU wheels share the module `onnxruntime`).
python -m pip uninstall -y onnxruntime onnxruntime-gpu >/dev/null 2>&1 || true
if [[ -n "${ORT_WHEEL}" ]]; then
  python -m pip install "${ORT_WHEEL}"
elif [[ "${ORT_CPU}" == 1 ]]; then
  python -m pip install -c "${CONSTRAINTS}" onnxruntime
elif [[ "${JETPACK}" == 6 ]]; then
  # NVIDIA's Jetson AI Lab index has onnxruntime-gpu built per JetPack 6 CUDA (PyPI's is x86 only).
  INDEX="${ORT_INDEX:-https://pypi.jetson-ai-lab.io/jp6/cu${CUDA_MAJOR}${CUDA_MINOR}}"
  python -m pip install --extra-index-url "${INDEX}" onnxruntime-gpu || {
    note "warning: no onnxruntime-gpu from ${INDEX}; installing the CPU build (TensorRT engines are unaffected)"
    python -m pip install -c "${CONSTRAINTS}" onnxruntime; }
elif [[ -n "${ORT_INDEX}" ]]; then
  python -m pip install --extra-index-url "${ORT_INDEX}" onnxruntime-gpu
else
  # NVIDIA publishes JetPack 5's onnxruntime-gpu as wheel files (Jetson Zoo), not on an index.
  note "JetPack 5: installing ONNX Runtime's CPU build; for its CUDA provider pass --ort-wheel <NVIDIA's JetPack 5 wheel>"
  python -m pip install -c "${CONSTRAINTS}" onnxruntime
fi

python -m pip install --no-deps -e "${SOURCE}"

# A pip OpenCV in the venv would shadow JetPack's; remove it if something pulled one in.
python -m pip uninstall -y opencv-python opencv-python-headless opencv-contrib-python >/dev/null 2>&1 || true

# The YuNet face detector for `fer-edge run` (OpenCV Zoo, MIT, 230 KB), accepted only with its
# pinned SHA-256: into ${STATE_DIR}, where the service looks (its unit sets FER_EDGE_CACHE_DIR
# there), then copied into this user's cache dir for runs by hand. sudo only where this user
# cannot write ${STATE_DIR}. Offline: copy the file over and run `fer-edge fetch-detector
# --from-file face_detection_yunet_2026may.onnx`. Not fatal: run falls back to Haar. Guarded, so
# an older fer-edge without the command still sets up.
fetch_yunet() {
  local target="${STATE_DIR}/${YUNET_FILE}"
  if mkdir -p "${STATE_DIR}" 2>/dev/null && [[ -w "${STATE_DIR}" ]]; then
    fer-edge fetch-detector --out "${target}" || return 1
  else
    note "${STATE_DIR} is not writable by $(id -un): fetching the detector there with sudo"
    sudo install -d -m 755 "${STATE_DIR}" \
      && sudo "$(command -v fer-edge)" fetch-detector --out "${target}" || return 1
  fi
  fer-edge fetch-detector --from-file "${target}" || return 1
}
if fer-edge fetch-detector --help >/dev/null 2>&1; then
  fetch_yunet || echo "YuNet not fetched: run falls back to Haar until \
fer-edge fetch-detector --out ${STATE_DIR}/${YUNET_FILE} succeeds (with sudo where needed)"
fi

echo
fer-edge info || die "fer-edge info reported a problem (above); see docs/jetson.md, 'When something is wrong'"
echo
echo "done: source ${VENV}/bin/activate, then follow docs/jetson.md (ONNX -> engine -> bench)"
