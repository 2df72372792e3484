"""Run one row in a fresh Python process and collect its JSON row.

A crash, a hang or an out-of-memory kill in the child becomes a failed row with a reason;
the parent (and the other rows) go on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from fer_edge.bench.rows import RowResult, RowSpec

DEFAULT_TIMEOUT_S = 600.0


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def child_env(threads: int | None, extra_pythonpath: list[str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if threads:
        # Backends set their own pools; these stop OpenMP/BLAS from oversubscribing the cores.
        env.setdefault("OMP_NUM_THREADS", str(threads))
    paths = [str(Path(__file__).resolve().parents[2]), *(extra_pythonpath or [])]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_isolated(
    spec: RowSpec, timeout_s: float = DEFAULT_TIMEOUT_S, extra_pythonpath: list[str] | None = None
) -> RowResult:
    """Run ``spec`` in ``python -m fer_edge.bench.worker`` and return its row (failed rows included)."""
    with tempfile.TemporaryDirectory(prefix="fer-edge-bench-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        result_path = Path(tmp) / "row.json"
        spec_path.write_text(json.dumps(spec.to_dict()))
        cmd = [sys.executable, "-m", "fer_edge.bench.worker", str(spec_path), str(result_path)]
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=child_env(spec.threads, extra_pythonpath),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return RowResult.failed(spec, f"timed out after {timeout_s:.0f} s")
        if result_path.is_file():
            try:
                return RowResult.from_dict(json.loads(result_path.read_text()))
            except (json.JSONDecodeError, TypeError) as exc:
                return RowResult.failed(spec, f"worker wrote an unreadable row ({exc})")
        if proc.returncode < 0:
            reason = f"worker killed by signal {-proc.returncode}"
            if -proc.returncode == 9:
                reason += " (out of memory?)"
        else:
            reason = f"worker exited with code {proc.returncode}"
        detail = _last_line(proc.stderr)
        return RowResult.failed(spec, f"{reason}: {detail}" if detail else reason)
