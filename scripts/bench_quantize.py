#!/usr/bin/env python
"""FP32 vs INT8 (tensorrt target) vs INT8 (cpu target) on this CPU: latency, size, accuracy.

One run, ONNX Runtime CPU, batch 1, 2 intra-op threads. Latency is measured in interleaved
rounds (every model once per round) so background load hits all models alike; the headline is
the lowest per-round median, and the median over all runs is reported beside it.

    python scripts/bench_quantize.py --checkpoint runs/gpu/fer2013/best.pt \
        --data fer2013.csv.gz --out-dir benchmarks/quantize

Writes ``<name>.json`` and ``<name>.md``; the models go to ``--work-dir`` (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_edge.build.calibration_manifest import content_sha256, draw_manifest, load_manifest, select_manifest_images  # noqa: E402
from fer_edge.build.export import export_checkpoint  # noqa: E402
from fer_edge.build.quantize import Method, QuantJob, Target, predict, run_quantization, session  # noqa: E402
from fer_edge.core.atomic import write_text_atomic  # noqa: E402
from fer_edge.core.machine import cpu_model as cpu_name  # noqa: E402
from fer_edge.core.markdown import markdown_table  # noqa: E402
from fer_edge.data import load_dataset  # noqa: E402
from fer_edge.model.onnx_contract import read_model_metadata  # noqa: E402


def measure(paths: list[Path], runs: int, rounds: int, threads: int) -> list[dict[str, float]]:
    from fer_edge.build.export import generated_faces

    x = generated_faces(4, seed=1)[2:3, None].astype(np.float32)
    sessions = [session(p, threads) for p in paths]
    for s in sessions:
        for _ in range(50):
            s.run(None, {"input": x})
    per_round = max(1, runs // rounds)
    samples: list[list[float]] = [[] for _ in paths]
    round_medians: list[list[float]] = [[] for _ in paths]
    for _ in range(rounds):
        for i, s in enumerate(sessions):
            times = []
            for _ in range(per_round):
                t0 = time.perf_counter()
                s.run(None, {"input": x})
                times.append((time.perf_counter() - t0) * 1000)
            samples[i] += times
            round_medians[i].append(float(np.median(times)))
    return [
        {
            "best_round_median_ms": min(rm),
            "median_ms": float(np.median(sa)),
            "p90_ms": float(np.percentile(sa, 90)),
            "min_ms": float(np.min(sa)),
            "runs": len(sa),
        }
        for sa, rm in zip(samples, round_medians, strict=True)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="export this checkpoint first")
    src.add_argument("--model", type=Path, help="an FP32 ONNX from fer-edge export")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--votes", type=Path)
    ap.add_argument("--manifest", type=Path, help="calibration manifest (default: draw 1000, seed 0)")
    ap.add_argument("--method", default="entropy", choices=[m.value for m in Method])
    ap.add_argument("--max-drop", type=float, default=0.5)
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out-dir", type=Path, default=Path("benchmarks/quantize"))
    ap.add_argument("--name", default=None, help="result file stem (default: from the model's dataset)")
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/fer-edge-bench-quantize"))
    ap.add_argument("--reuse", action="store_true",
                    help="re-time the models in --work-dir from an earlier run (pass any --model), no re-quantising")
    args = ap.parse_args()

    args.work_dir.mkdir(parents=True, exist_ok=True)
    if args.reuse:
        args.model, args.checkpoint = args.work_dir / "model.onnx", None
    if args.checkpoint is not None:
        fp32 = args.work_dir / "model.onnx"
        export_checkpoint(args.checkpoint, fp32)
        source = str(args.checkpoint)
    else:
        fp32, source = args.model, str(args.model)
    meta = read_model_metadata(fp32)
    dataset = meta["dataset"]
    faces = load_dataset(args.data, dataset=dataset, votes=args.votes)
    digest = content_sha256(args.data)
    if args.manifest is not None:
        manifest = load_manifest(args.manifest)
        set_name = str(args.manifest)
    else:
        manifest = draw_manifest(faces, args.data, size=1000, seed=0, votes=args.votes, source_sha256=digest)
        set_name = "Training, stratified, seed 0"
    calib = select_manifest_images(manifest, faces, args.data, args.votes, source_sha256=digest)
    public, private = faces.split("PublicTest"), faces.split("PrivateTest")

    models = {"fp32": fp32}
    reports = {}
    previous = args.work_dir / "quantize_reports.json"
    for target in Target if args.reuse else ():
        models[f"int8-{target.value}"] = args.work_dir / f"model.int8.{target.value}.onnx"
    if args.reuse:
        reports_json = json.loads(previous.read_text())
    for target in () if args.reuse else Target:
        out = args.work_dir / f"model.int8.{target.value}.onnx"
        job = QuantJob(
            model=fp32,
            out=out,
            calib_images=calib.images,
            eval_images=public.images,
            eval_labels=public.labels,
            target=target,
            method=Method(args.method),
            max_drop=args.max_drop,
            measure_latency=False,
            calibration_info={"set": set_name, "split": "Training", "manifest_sha256": manifest.digest},
        )
        reports[target.value] = run_quantization(job, progress=lambda m: print("  " + m, file=sys.stderr))
        models[f"int8-{target.value}"] = out

    if not args.reuse:
        reports_json = {k: v.to_dict() for k, v in reports.items()}
        previous.write_text(json.dumps(reports_json))
    load_before = os.getloadavg()
    lat = measure(list(models.values()), args.runs, args.rounds, args.threads)
    load_after = os.getloadavg()
    rows = []
    fp32_pred = {s: predict(fp32, d.images) for s, d in (("PublicTest", public), ("PrivateTest", private))}
    for (name, path), timing in zip(models.items(), lat, strict=True):
        row: dict[str, object] = {"model": name, "bytes": path.stat().st_size, **timing}
        for split, data in (("PublicTest", public), ("PrivateTest", private)):
            pred = predict(path, data.images)
            row[f"{split}_accuracy"] = float(np.mean(pred == data.labels))
            row[f"{split}_agreement"] = float(np.mean(pred == fp32_pred[split]))
        rows.append(row)
    base = rows[0]
    for row in rows:
        row["speedup"] = base["best_round_median_ms"] / row["best_round_median_ms"]  # type: ignore[operator]
        row["size_ratio"] = row["bytes"] / base["bytes"]  # type: ignore[operator]

    import onnx
    import onnxruntime

    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:
        pass
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "versions": versions,
        "source": source,
        "dataset": dataset,
        "settings": {
            "threads": args.threads,
            "batch": 1,
            "runs": args.runs,
            "rounds": args.rounds,
            "method": args.method,
            "calibration": set_name,
            "calibration_images": len(calib),
        },
        "rows": rows,
        "quantize_reports": reports_json,
    }
    stem = args.name or f"{dataset}"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out_dir / f"{stem}.json", json.dumps(result, indent=2) + "\n")
    write_text_atomic(args.out_dir / f"{stem}.md", markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:  # type: ignore[type-arg]
    s = r["settings"]
    lines = [
        f"# INT8 quantisation on the CPU: {r['dataset']}",
        "",
        f"- Date: {r['date']}; source: `{r['source']}`",
        f"- Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores; load average before/after "
        f"{r['machine']['load_average_before'][0]:.2f}/{r['machine']['load_average_after'][0]:.2f}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()),
        f"- ONNX Runtime CPU, batch 1, {s['threads']} threads, {s['runs']} runs per model in {s['rounds']} "
        "interleaved rounds; latency = lowest per-round median (median of all runs beside it)",
        f"- Calibration: {s['method']} on {s['calibration_images']} images ({s['calibration']})",
        f"- Command: `{r['command']}`",
        "",
        markdown_table(
            ("model", "size MB", "size vs FP32", "latency ms", "median ms", "p90 ms", "speed-up", "PublicTest acc",
             "PrivateTest acc", "agreement (Private)"),
            [(row["model"], f"{row['bytes'] / 1e6:.2f}", f"{row['size_ratio']:.1%}",
              f"{row['best_round_median_ms']:.3f}", f"{row['median_ms']:.3f}", f"{row['p90_ms']:.3f}",
              f"{row['speedup']:.2f}x",
              f"{row['PublicTest_accuracy']:.2%}", f"{row['PrivateTest_accuracy']:.2%}",
              f"{row['PrivateTest_agreement']:.2%}") for row in r["rows"]],
            align="lrrrrrrrrr",
        ),
    ]
    for target, rep in r["quantize_reports"].items():
        kept = ", ".join(rep["fp32_layers"]) or "none"
        lines.append("")
        drop = rep["drop_points"]
        lines.append(f"- {target} target: PublicTest drop {drop:.2f} points; layers kept FP32: {kept}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
