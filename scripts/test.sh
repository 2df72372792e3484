#!/usr/bin/env bash
# Install everything the project needs on a fresh machine, then lint, type-check and test.
# This is the README's test command and what CI (.ci/run) runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

# --- fleet (issue 15): the fleet tests start their own PostgreSQL server; install it where missing ---
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql
fi
# --- end fleet ---------------------------------------------------------------------------------------
# The CPU wheel of torch first: any other spec can pull a multi-GB CUDA build.
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[train,opencv,test,fleet]"
# Typed TensorRT 10.13 API for mypy; --no-deps because its dependencies pull TensorRT itself.
python -m pip install -q --no-deps "tensorrt-stubs==10.13.0.35.1"
python -m ruff check fer_edge tests scripts
python -m mypy fer_edge
python scripts/typecheck_tensorrt.py
python -m pytest -q -p no:cacheprovider "$@"
