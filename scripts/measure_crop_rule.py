"""Fit the crop rule of a face detector on real FER2013 test faces whose true framing is known.

Each face (48x48, a FER2013 crop) is upscaled to 120-220 px and pasted into a 640x480 textured
frame at a known place, so the pasted square IS the framing the model was trained on. The
detector runs on the frame; for every detected face we record how its box relates to the true
square, and fit

    centre = box centre + (dx * w, dy * h),  side = scale * w**p * h**(1 - p)

on PublicTest faces. On held-out PrivateTest faces we then compare the model's accuracy on the
dataset's own crops with its accuracy on crops cut by the fitted rule (and by the naive rule: the
box as-is, squared). Output: JSON + Markdown under benchmarks/camera/.

    python scripts/measure_crop_rule.py --data fer2013.csv.gz \
        --detector-model face_detection_yunet.onnx --model fer_edge/weights/fer2013.onnx
    PYTHONPATH=/path/to/opencv4 python scripts/measure_crop_rule.py ... --detector haar
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scenes import PlacedFace, scene_with_faces

from fer_edge.camera.crop import TIGHT, CropRule, crop_faces
from fer_edge.camera.detection import FaceDetector, make_detector
from fer_edge.camera.tracking import iou_matrix
from fer_edge.core.atomic import write_text_atomic
from fer_edge.core.optional import import_cv2


def detect_placed(
    detector: FaceDetector,
    faces: np.ndarray,
    seed: int,
    width: int = 640,
    height: int = 480,
    side_range: tuple[int, int] = (120, 220),
    tilt: float = 0.0,
) -> tuple[list[np.ndarray], list[np.ndarray], list[PlacedFace], list[np.ndarray]]:
    """One face per frame (turned by up to +-``tilt`` degrees); for each face: the frame, the
    matched detector box (or None), the placement, the detector's landmarks."""
    rng = np.random.default_rng(seed)
    frames, boxes, placed, marks = [], [], [], []
    for i in range(len(faces)):
        side = int(rng.integers(side_range[0], side_range[1] + 1))
        tilts = [float(rng.uniform(-tilt, tilt))] if tilt else None
        frame, (p,) = scene_with_faces(faces[i : i + 1], width, height, [side], rng, tilts=tilts)
        det = detector.detect(frame)
        box, mark = None, np.full((5, 2), np.nan)
        if len(det):
            ious = iou_matrix(np.array([p.box], np.float64), det.boxes)[0]
            if ious.max() >= 0.3:
                box = det.boxes[int(ious.argmax())]
                mark = det.landmarks[int(ious.argmax())]
        frames.append(frame)
        boxes.append(box)
        placed.append(PlacedFace(i, p.x, p.y, p.side))
        marks.append(mark)
    return frames, boxes, placed, marks  # type: ignore[return-value]


def fit_rule(
    boxes: list[np.ndarray], placed: list[PlacedFace], tilts: np.ndarray | None = None
) -> tuple[CropRule, dict[str, float]]:
    """``tilts``: the faces' measured tilts; the centre offset is then fitted along the face's axes
    (the frame the aligned crop is cut in)."""
    b = np.array([bx for bx in boxes], dtype=np.float64)
    t = np.array([[p.x, p.y, p.side] for p in placed], dtype=np.float64)
    w, h = b[:, 2], b[:, 3]
    box_centre = np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2], axis=1)
    true_centre = t[:, :2] + t[:, 2:3] / 2
    if tilts is not None:
        from fer_edge.camera.align import rotate_points

        true_centre = rotate_points(true_centre[:, None], box_centre, tilts)[:, 0]
    rx = (true_centre[:, 0] - box_centre[:, 0]) / w
    ry = (true_centre[:, 1] - box_centre[:, 1]) / h
    # log S - log h = log k + p (log w - log h): least squares, after dropping gross outliers.
    ys, xs = np.log(t[:, 2]) - np.log(h), np.log(w) - np.log(h)
    keep = np.abs(ys - np.median(ys)) <= 4 * (np.median(np.abs(ys - np.median(ys))) + 1e-6)
    if np.ptp(xs[keep]) > 1e-6:
        p, logk = np.polyfit(xs[keep], ys[keep], 1)
    else:  # square boxes (Haar): the side ratio is all there is
        p, logk = 0.5, float(np.mean(ys[keep]))
    p = float(np.clip(p, 0.0, 1.0))
    logk = float(np.mean(ys[keep] - p * xs[keep]))
    rule = CropRule(
        scale=round(float(np.exp(logk)), 3),
        dx=round(float(np.median(rx)), 3),
        dy=round(float(np.median(ry)), 3),
        width_weight=round(p, 3),
    )
    side_pred = rule.scale * w**rule.width_weight * h ** (1 - rule.width_weight)
    stats = {
        "faces": int(len(b)),
        "box_width_over_crop_median": float(np.median(w / t[:, 2])),
        "box_height_over_crop_median": float(np.median(h / t[:, 2])),
        "centre_dx_median": float(np.median(rx)),
        "centre_dx_iqr": float(np.subtract(*np.percentile(rx, [75, 25]))),
        "centre_dy_median": float(np.median(ry)),
        "centre_dy_iqr": float(np.subtract(*np.percentile(ry, [75, 25]))),
        "side_error_median_pct": float(100 * np.median(np.abs(side_pred / t[:, 2] - 1))),
        "kept_after_outliers": int(keep.sum()),
    }
    return rule, stats


def classify_stretched(backend: object, frames: list[np.ndarray], boxes: list[np.ndarray]) -> np.ndarray:
    """The naive crop: the detector's box as-is, not squared, stretched to 48x48."""
    cv2 = import_cv2()
    crops = []
    for f, (x, y, w, h) in zip(frames, boxes, strict=True):
        gray = cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)
        patch = cv2.getRectSubPix(gray, (int(round(w)), int(round(h))), (x + w / 2 - 0.5, y + h / 2 - 0.5))
        crops.append(cv2.resize(patch, (48, 48), interpolation=cv2.INTER_AREA))
    return np.argmax(backend.infer(np.stack(crops)), axis=1)  # type: ignore[attr-defined]


def classify(
    backend: object, frames: list[np.ndarray], boxes: list[np.ndarray], rule: CropRule
) -> np.ndarray:
    cv2 = import_cv2()
    crops = np.stack(
        [
            crop_faces(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), rule.regions(b[None]))[0]
            for f, b in zip(frames, boxes, strict=True)
        ]
    )
    return np.argmax(backend.infer(crops), axis=1)  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--detector", choices=["yunet", "haar"], default="yunet")
    ap.add_argument("--detector-model", type=Path, help="YuNet ONNX (for --detector yunet)")
    ap.add_argument("--model", type=Path, help="fer-edge model for the accuracy check (optional)")
    ap.add_argument("--n-fit", type=int, default=800)
    ap.add_argument("--n-eval", type=int, default=800)
    ap.add_argument("--min-face", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tilt", type=float, default=0.0,
                    help="turn the faces by up to +- this many degrees; fit and measure aligned crops too")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/camera"))
    args = ap.parse_args()

    from fer_edge.data import load_dataset

    cv2 = import_cv2()
    detector = make_detector(
        args.detector_model if args.detector == "yunet" else None, min_face=args.min_face
    )
    data = load_dataset(args.data, dataset="fer2013")
    rng = np.random.default_rng(args.seed)
    fit_set = data.split("PublicTest")
    eval_set = data.split("PrivateTest")
    fit_idx = rng.choice(len(fit_set.images), size=min(args.n_fit, len(fit_set.images)), replace=False)
    eval_idx = rng.choice(len(eval_set.images), size=min(args.n_eval, len(eval_set.images)), replace=False)

    t0 = time.perf_counter()
    _, fboxes, fplaced, fmarks = detect_placed(detector, fit_set.images[fit_idx], seed=args.seed + 1,
                                               tilt=args.tilt)
    found = [i for i, b in enumerate(fboxes) if b is not None]
    from fer_edge.camera.align import eye_angles

    fit_tilts = eye_angles(np.stack([fmarks[i] for i in found])) if args.tilt else None
    rule, stats = fit_rule([fboxes[i] for i in found], [fplaced[i] for i in found], fit_tilts)
    stats["detection_rate_fit"] = len(found) / len(fboxes)
    print(f"{args.detector}: fitted {rule} on {len(found)}/{len(fboxes)} detected PublicTest faces")
    print(json.dumps(stats, indent=1))

    result: dict[str, object] = {
        "detector": args.detector,
        "rule": rule.to_dict(),
        "fit": stats,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "opencv": cv2.__version__,
        },
        "data": {
            "file": args.data.name,
            "fit_split": "PublicTest",
            "eval_split": "PrivateTest",
            "n_fit": len(fit_idx),
            "n_eval": len(eval_idx),
            "seed": args.seed,
            "face_side_px": [120, 220],
            "tilt_deg": args.tilt,
            "frame": [640, 480],
        },
    }
    if args.model:
        from fer_edge.runtime.classifier import load_backend

        frames, eboxes, _, emarks = detect_placed(detector, eval_set.images[eval_idx], seed=args.seed + 2,
                                                  tilt=args.tilt)
        hit = [i for i, b in enumerate(eboxes) if b is not None]
        labels = eval_set.labels[eval_idx][hit]
        with load_backend(args.model, device="cpu") as backend:
            own = np.argmax(backend.infer(eval_set.images[eval_idx][hit]), axis=1)
            sel_frames, sel_boxes = [frames[i] for i in hit], [eboxes[i] for i in hit]
            accs = {
                "dataset_crops": float(np.mean(own == labels)),
                "fitted_rule": float(np.mean(classify(backend, sel_frames, sel_boxes, rule) == labels)),
                "tight_box_squared": float(
                    np.mean(classify(backend, sel_frames, sel_boxes, TIGHT) == labels)
                ),
            }
            stretched = classify_stretched(backend, sel_frames, sel_boxes)
            accs["box_stretched_not_squared"] = float(np.mean(stretched == labels))
            longer_side = 0.0 if rule.width_weight < 0.5 else 1.0  # YuNet boxes are taller than wide
            for name, r in (
                ("square_side_width", CropRule(1.0, width_weight=1.0)),
                ("square_side_height", CropRule(1.0, width_weight=0.0)),
                ("square_longer_side_plus_25pct", CropRule(1.25, width_weight=longer_side)),
            ):
                accs[name] = float(np.mean(classify(backend, sel_frames, sel_boxes, r) == labels))
            from fer_edge.camera.crop import average_views, face_views
            from fer_edge.model.scoring import softmax

            for views in (2, 6):
                batch = np.concatenate(
                    [
                        face_views(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), b[None], rule, views)
                        for f, b in zip(sel_frames, sel_boxes, strict=True)
                    ]
                )
                probs = average_views(softmax(backend.infer(batch)), views)
                accs[f"fitted_rule_{views}_views"] = float(np.mean(np.argmax(probs, axis=1) == labels))
            from fer_edge.camera.align import aligned_views

            sel_marks = [emarks[i] for i in hit]
            for views in (1, 6):  # turned upright on the landmarks, the rule fitted in the face's frame
                per_view = [
                    np.concatenate(
                        [
                            aligned_views(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), b[None], m[None], rule, views, k)
                            for f, b, m in zip(sel_frames, sel_boxes, sel_marks)
                        ]
                    )
                    for k in range(views)
                ]
                probs = np.mean([softmax(backend.infer(batch)) for batch in per_view], axis=0)
                accs[f"aligned_{views}_views"] = float(np.mean(np.argmax(probs, axis=1) == labels))
            sweep = {}
            for scale in (0.9, 1.0, 1.1, 1.2, 1.3, 1.4):
                r = CropRule(scale=scale, dx=rule.dx, dy=rule.dy, width_weight=rule.width_weight)
                sweep[f"{scale:.1f}"] = float(np.mean(classify(backend, sel_frames, sel_boxes, r) == labels))
        result["accuracy"] = {
            "model": args.model.name,
            "faces": len(hit),
            "detection_rate_eval": len(hit) / len(eboxes),
            **accs,
            "scale_sweep_fitted_offsets": sweep,
        }
        print(json.dumps(result["accuracy"], indent=1))
    result["seconds"] = round(time.perf_counter() - t0, 1)
    stem = f"crop_rule_{args.detector}" + (f"_tilt{args.tilt:g}" if args.tilt else "")
    write_text_atomic(args.out / f"{stem}.json", json.dumps(result, indent=2) + "\n")
    write_text_atomic(args.out / f"{stem}.md", markdown(result))
    print(f"wrote {args.out / stem}.json and .md")


def markdown(r: dict) -> str:  # type: ignore[type-arg]
    rule, fit = r["rule"], r["fit"]
    lines = [
        f"# Crop rule for the {r['detector']} detector"
        + (f", faces tilted up to +-{r['data']['tilt_deg']:g} degrees" if r["data"].get("tilt_deg") else ""),
        "",
        f"Command: `{r['command']}`",
        "",
        f"Machine: {r['machine']}",
        "",
        f"Fitted rule: centre + ({rule['dx']}·w, {rule['dy']}·h), side = {rule['scale']} · "
        f"w^{rule['width_weight']} · h^{1 - rule['width_weight']:.3f}",
        "",
        "| fit statistic (PublicTest) | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.4g} |" for k, v in fit.items()]
    if "accuracy" in r:
        acc = r["accuracy"]
        lines += [
            "",
            f"Accuracy on {acc['faces']} detected PrivateTest faces (model {acc['model']}, "
            f"detection rate {acc['detection_rate_eval']:.3f}):",
            "",
            "| crops | top-1 |",
            "|---|---|",
            f"| dataset's own 48x48 crops | {acc['dataset_crops']:.4f} |",
            f"| detector box, fitted rule | {acc['fitted_rule']:.4f} |",
            f"| fitted rule + mirror (2 views) | {acc['fitted_rule_2_views']:.4f} |",
            f"| fitted rule x scales 0.9/1.0/1.1 + mirror (6 views, the pipeline's default) | "
            f"{acc['fitted_rule_6_views']:.4f} |",
            f"| aligned on the landmarks, fitted rule (1 view) | {acc['aligned_1_views']:.4f} |",
            f"| aligned on the landmarks, 6 views | {acc['aligned_6_views']:.4f} |",
            f"| detector box as-is, squared (side = sqrt(w·h)) | {acc['tight_box_squared']:.4f} |",
            f"| detector box as-is, stretched to 48x48 | {acc['box_stretched_not_squared']:.4f} |",
            f"| square, side = box width | {acc['square_side_width']:.4f} |",
            f"| square, side = box height | {acc['square_side_height']:.4f} |",
            f"| square, 1.25 x the box's longer side | {acc['square_longer_side_plus_25pct']:.4f} |",
            "",
            "| scale (fitted offsets) | top-1 |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v:.4f} |" for k, v in acc["scale_sweep_fitted_offsets"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
