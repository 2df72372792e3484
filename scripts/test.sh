#!/usr/bin/env bash
# Install everything the project needs on a fresh machine, then lint, type-check and test.
# This is the README's test command and what CI (.ci/run) runs. Arguments go to the host pytest.
#
# 1. The host run: this Python with torch, every test.
# 2. The device side as a Jetson has it: Python 3.8 with JetPack 5's pins and Python 3.10 with
#    JetPack 6's (scripts/jetpackN-constraints.txt), no torch, each in its own venv under
#    .ci-venvs/, running the suite minus the slow real-data accuracy tests (torch tests skip).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

# ---- services the tests need --------------------------------------------------------------------
# The fleet tests start their own PostgreSQL server (as the postgres user), the metrics tests a
# Prometheus server and promtool; install what is missing (Debian's packages).
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ---- 1. host run ----------------------------------------------------------------------------------
# The CPU wheel of torch first: any other spec can pull a multi-GB CUDA build.
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[train,opencv,test,cpu,fleet,metrics]"
# Typed TensorRT 10.13 API for mypy; --no-deps because its dependencies pull TensorRT itself.
python -m pip install -q --no-deps "tensorrt-stubs==10.13.0.35.1"
python -m ruff check fer_edge tests scripts
python -m mypy fer_edge
python scripts/typecheck_tensorrt.py
python -m pytest -q -p no:cacheprovider "$@"

# ---- 2. device side: JetPack 5 (Python 3.8) and JetPack 6 (Python 3.10) ---------------------------
find_python() {  # find_python 3.8 -> path of a working python3.8 (pyenv's first, then PATH)
  local want="$1" candidate root
  root="$(pyenv root 2>/dev/null || echo "${HOME}/.pyenv")"
  for candidate in $(ls -d "${root}/versions/${want}".*/bin/python"${want}" 2>/dev/null | sort -V -r) \
                   "$(command -v "python${want}" || true)"; do
    if [[ -n "${candidate}" ]] && "${candidate}" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '${want}'.split('.'))))" 2>/dev/null; then
      echo "${candidate}"
      return 0
    fi
  done
  return 1
}

device_suite() {  # device_suite 3.8 jetpack5
  local version="$1" name="$2" python venv
  python="$(find_python "${version}")" || {
    echo "error: python${version} not found (pyenv install ${version}, or put python${version} on PATH): the ${name} device-side suite cannot run" >&2
    exit 1
  }
  venv=".ci-venvs/${name}"
  if ! "${venv}/bin/python" -c "import sys" 2>/dev/null; then
    rm -rf "${venv}"
    "${python}" -m venv "${venv}"
  fi
  echo "== device side, ${name}: $("${venv}/bin/python" -V) with scripts/${name}-constraints.txt, no torch"
  "${venv}/bin/python" -m pip install -q -c "scripts/${name}-constraints.txt" ".[cpu,opencv,metrics,test-device]"
  "${venv}/bin/python" - <<'PY'
import importlib.util, sys
bad = [m for m in ("torch", "onnxscript") if importlib.util.find_spec(m)]
sys.exit(f"error: the device venv has {bad}; it must not" if bad else 0)
PY
  "${venv}/bin/python" -m pytest -q -p no:cacheprovider -m "not slow"
}

device_suite 3.8 jetpack5
device_suite 3.10 jetpack6
