"""Temperature scaling for the shipped default model, without retraining it.

``configs/default.yaml`` now asks for ``calibration: {method: temperature, split: model_validation}``:
``serkit train`` fits T on the speakers the head held out of training for early stopping, and the
weights are the same as without calibration. The shipped weights were trained before that option
existed, so this script does for them exactly what ``serkit train`` does after fitting:

1. load the recipe's manifest and its (cached) features, in the order ``serkit train`` used;
2. reproduce the head's early-stopping split (``TorchClassifier._split``: GroupShuffleSplit by
   speaker, ``val_fraction`` and the recipe's seed) — speakers never used for a weight update;
3. score those utterances with the shipped head and fit T by NLL
   (:func:`serkit.models.calibration.fit_temperature`);
4. write T into ``estimator/estimator.json`` (a plain JSON number; the Predictor applies it) and
   the card (``model.json`` ``calibration`` + README.md). With ``--run RUN_DIR`` (a ``serkit run``
   of the recipe with calibration on), the main evaluation's ECE before / after is added as well.

    nice -n 10 .venv/bin/python bench/calibrate_default.py [--run RUNS/default-cal] [--dry-run]
"""
from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from serkit.config import load_config  # noqa: E402
from serkit.evaluation import metrics as M  # noqa: E402
from serkit.evaluation.estimators import build_estimator  # noqa: E402
from serkit.evaluation.protocol import load_manifest  # noqa: E402
from serkit.features.pipeline import FeaturePipeline  # noqa: E402
from serkit.inference.modelcard import render_card  # noqa: E402
from serkit.inference.modeldir import read_card  # noqa: E402
from serkit.models.calibration import TemperatureScaled, fit_temperature, nll  # noqa: E402
from serkit.models.capabilities import model_input  # noqa: E402
from serkit.models.persist import load_estimator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "src" / "serkit" / "resources" / "models" / "serkit-default"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--run", type=Path, default=None, help="serkit run of the recipe with calibration on")
    ap.add_argument("--dry-run", action="store_true", help="print, write nothing")
    args = ap.parse_args(argv)

    cfg = load_config(args.config)
    manifest, _, _ = load_manifest(cfg)
    pipeline = FeaturePipeline.from_config(cfg.audio, cfg.features)
    fs = pipeline.fit(manifest).transform_manifest(manifest, progress=False)
    card = read_card(args.model)
    n = card["training_data"]["utterances"]
    if len(fs.manifest) != n:
        raise SystemExit(f"{len(fs.manifest)} usable utterances here, the card says {n}: not the same data")
    y = fs.manifest["label"].astype(str).to_numpy()
    groups = fs.manifest["speaker"].astype(str).to_numpy()
    head = build_estimator(cfg)           # the recipe's TorchClassifier (seed, val_fraction)
    classes = np.asarray(card["classes"])
    _, val = head._split(np.searchsorted(classes, y), groups)
    est = load_estimator(args.model / "estimator")
    raw = est.estimator if isinstance(est, TemperatureScaled) else est
    p = np.asarray(raw.predict_proba(model_input(raw, fs.X[val])))
    y_idx = np.searchsorted(classes, y[val])
    t = fit_temperature(p, y_idx)
    from serkit.models.calibration import apply_temperature

    q = apply_temperature(p, t)
    speakers = sorted(set(groups[val]))
    summary = {"temperature": t, "utterances": int(len(val)), "speakers": len(speakers),
               "nll_before": nll(p, y_idx), "nll_after": nll(q, y_idx),
               "ece_before": M.ece(y[val], p, classes), "ece_after": M.ece(y[val], q, classes)}
    print(json.dumps(summary, indent=1))
    print("early-stopping speakers:", ", ".join(speakers))
    if args.dry_run:
        return 0

    meta_path = args.model / "estimator" / "estimator.json"
    meta = json.loads(meta_path.read_text())
    meta["calibration"] = {"method": "temperature", "temperature": round(t, 6)}
    meta_path.write_text(json.dumps(meta, indent=1))
    model_json = json.loads((args.model / "model.json").read_text())
    model_json["calibration"] = {
        "method": "temperature", "temperature": round(t, 6), "split": "model_validation",
        "utterances": int(len(val)), "speakers": len(speakers),
        "fitted_on": (f"temperature scaling (NLL minimised over one scalar T) on the speakers the head held "
                      f"out of training for early stopping ({len(val)} utterances, {len(speakers)} "
                      f"speakers; GroupShuffleSplit val_fraction {head.val_fraction}, seed {head.seed})"),
        "note": (f"On those utterances: NLL {summary['nll_before']:.3f} → {summary['nll_after']:.3f}, ECE "
                 f"{100 * summary['ece_before']:.1f} % → {100 * summary['ece_after']:.1f} % (the split "
                 "also chose the early-stopping epoch, so these are optimistic; the cross-validated "
                 "figures are under Evaluation). Fitted after training by `python "
                 "bench/calibrate_default.py`, which reproduces what `serkit train configs/default.yaml` "
                 "does with calibration.split=model_validation."),
    }
    if args.run is not None:
        metrics = json.loads((args.run / "metrics.json").read_text())
        main_ev = model_json["evaluations"][0]
        if abs(metrics["ua"]["mean"] - main_ev["ua"]["mean"]) > 1e-6:
            print(f"warning: the run's UA {metrics['ua']['mean']:.4f} differs from the card's "
                  f"{main_ev['ua']['mean']:.4f}")
        for k in ("ece", "ece_uncalibrated", "temperature"):
            main_ev[k] = metrics[k]
        main_ev["calibration_run"] = {
            "ua": metrics["ua"], "command": "serkit run configs/default.yaml (calibration as in the recipe)",
            "fold_temperatures": [round(f["temperature"], 4) for f in metrics["folds"]],
            "fold_ece": [round(f["ece"], 4) for f in metrics["folds"]],
            "fold_ece_uncalibrated": [round(f["ece_uncalibrated"], 4) for f in metrics["folds"]]}
    (args.model / "model.json").write_text(json.dumps(model_json, indent=1, default=str))
    (args.model / "README.md").write_text(render_card(read_card(args.model)))
    print(f"wrote {meta_path}, model.json and README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
