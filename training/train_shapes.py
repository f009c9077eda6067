"""Train vidfleet's bundled detector, ``vidfleet-shapes-n.pt``, on generated moving-shapes frames.

Generates a YOLO dataset with ``vidfleet_detector.synthetic`` (seeds >= 1_000_000, never a test
seed), trains an ultralytics YOLO11 built from ``yolo11n.yaml`` (3 classes, optionally with a
smaller width/depth scale) on the CPU from scratch, and copies the best weights (optimizer
stripped, class names circle/square/triangle inside) into the detector package.

Nothing is downloaded: no pretrained weights, no AMP check, no plots (which would fetch a font).
See training/README.md for the command that produced the shipped weights.

    PYTHONPATH=services/detector/src python training/train_shapes.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "services/detector/src/vidfleet_detector/weights/vidfleet-shapes-n.pt"
DEFAULT_WORKDIR = REPO / "training/workdir"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=2000, help="generated images, train + val (default 2000)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of images for validation (default 0.1)")
    p.add_argument("--epochs", type=int, default=16, help="training epochs (default 16)")
    p.add_argument("--imgsz", type=int, default=320, help="training/inference image size (default 320)")
    p.add_argument("--batch", type=int, default=8, help="batch size; the optimizer steps after every batch (default 8)")
    p.add_argument("--seed", type=int, default=1_000_000, help="dataset and training seed, >= 1_000_000 (default 1000000)")
    p.add_argument("--depth", type=float, default=0.33, help="depth multiple of the yolo11n scale (yolo11n: 0.50)")
    p.add_argument("--width", type=float, default=0.125, help="width multiple of the yolo11n scale (yolo11n: 0.25)")
    p.add_argument("--lr0", type=float, default=0.002, help="AdamW initial learning rate (default 0.002)")
    p.add_argument("--close-mosaic", type=int, default=3, help="last epochs trained without mosaic (default 3)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the best weights go")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="dataset and run folder (not committed)")
    return p.parse_args(argv)


def dataset(args: argparse.Namespace) -> Path:
    """Generate the dataset, or reuse one generated earlier with the same parameters."""
    from vidfleet_detector.synthetic import generate_yolo_dataset

    root = args.workdir / "dataset"
    stamp = {"images": args.images, "seed": args.seed, "val_fraction": args.val_fraction}
    stamp_file = root / "stamp.json"
    if stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp and (root / "data.yaml").exists():
        print(f"reusing dataset {root}", flush=True)
        return root / "data.yaml"
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    ds = generate_yolo_dataset(root, images=args.images, seed=args.seed, val_fraction=args.val_fraction)
    stamp_file.write_text(json.dumps(stamp))
    print(
        f"dataset: {ds.train_images} train + {ds.val_images} val images, {ds.labels} labels, "
        f"{time.perf_counter() - started:.0f}s",
        flush=True,
    )
    return ds.data_yaml


def model_yaml(args: argparse.Namespace) -> Path:
    """yolo11n.yaml with nc=3 and the chosen depth/width scale, written into the workdir."""
    import yaml
    from ultralytics.nn.tasks import yaml_model_load

    cfg = yaml_model_load("yolo11n.yaml")  # ships inside ultralytics; nothing to download
    cfg["nc"] = 3
    cfg["scales"] = {"n": [args.depth, args.width, 1024]}
    cfg["scale"] = "n"
    cfg.pop("yaml_file", None)
    path = args.workdir / "yolo11-vidfleet-shapes.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
    print(f"torch threads: {torch.get_num_threads()}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.seed < 1_000_000:
        sys.exit("--seed must be >= 1_000_000 (seeds below 1000 are for test videos)")
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(tempfile.gettempdir()) / "vidfleet-yolo-config"))
    Path(os.environ["YOLO_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_OFFLINE", "1")

    started = time.perf_counter()
    data_yaml = dataset(args)

    from ultralytics import YOLO

    model = YOLO(str(model_yaml(args)), task="detect")
    # ultralytics limits torch to cpu_count - 1 threads (safe on a shared box); training owns the machine.
    threads = os.cpu_count() or 1
    model.add_callback("on_pretrain_routine_end", lambda trainer: torch_threads(threads))
    train_started = time.perf_counter()
    model.train(
        data=str(data_yaml),
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        nbs=args.batch,  # no gradient accumulation: a short CPU schedule needs every optimizer step
        device="cpu",
        workers=0,
        cache="ram",
        seed=args.seed,
        deterministic=True,
        pretrained=False,
        amp=False,
        plots=False,
        optimizer="AdamW",
        lr0=args.lr0,
        cos_lr=True,
        warmup_epochs=1.0,
        close_mosaic=args.close_mosaic,
        degrees=0.0,
        flipud=0.5,
        fliplr=0.5,
        project=str(args.workdir / "runs"),
        name="shapes",
        exist_ok=True,
        verbose=True,
    )
    train_seconds = time.perf_counter() - train_started
    best = Path(model.trainer.best)

    # Final numbers: the best checkpoint on the val split (trainer already stripped its optimizer).
    trained = YOLO(str(best))
    names = dict(trained.names)
    if names != {0: "circle", 1: "square", 2: "triangle"}:
        sys.exit(f"unexpected class names in {best}: {names}")
    metrics = trained.val(data=str(data_yaml), imgsz=args.imgsz, batch=args.batch, device="cpu", plots=False, verbose=False)
    summary = {
        "mAP50": round(float(metrics.box.map50), 4),
        "mAP50-95": round(float(metrics.box.map), 4),
        "precision": round(float(metrics.box.mp), 4),
        "recall": round(float(metrics.box.mr), 4),
        "train_seconds": round(train_seconds),
        "total_seconds": round(time.perf_counter() - started),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, args.out)
    summary["weights"] = str(args.out)
    summary["weights_bytes"] = args.out.stat().st_size
    (args.workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
