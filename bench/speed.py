"""Inference speed of the default recogniser, side by side (run by hand; writes bench/results/speed.md).

Every measurement runs in its own fresh process (so model load time and peak memory are its own),
on the same clips, one after the other, alternating variants when ``--repeats`` > 1 (the best of
the repeats is reported, as ``timeit`` does: the machine is shared, slower repeats are noise).

Short clips: ``--clips`` RAVDESS + CREMA-D utterances (half each, every speaker), predicted from
their files (decoding, resampling, the clip speech check, log-mel, encoder, head: all of
``Predictor.predict_files``). Long recording: a ``--long-minutes`` recording assembled from other
utterances of the same corpora with pauses between them, predicted with ``predict_long`` (timeline:
voice-activity detection, 3 s windows every 1.5 s, smoothing, merging). The recordings are written
to a temporary folder, never into the repository.

Variants (``--variants``; ``onnx-*`` need ``--onnx-dir`` from ``serkit export``):

==============  ==================================================================================
naive           what the Hugging Face conventions give: WhisperFeatureExtractor padding every clip
                to 30 s, the full encoder, fp32, one clip at a time (pooled over the clip's own
                frames so that its labels are comparable); run on ``--naive-clips`` of the clips
baseline        serkit's predictor as it was at ``--baseline-rev`` (git archive of that commit)
torch-fp32      serkit's predictor on torch, float32 (the reference)
torch-bf16      serkit's predictor on torch, encoder under bfloat16 autocast
default         serkit's predictor as shipped: runtime auto = the whole model exported once to ONNX
                (float32) and run on ONNX Runtime
onnx-int8       the same export with dynamically quantised int8 weights (``serkit export
                --quantize int8``, made by this script into its temporary folder)
==============  ==================================================================================

Accuracy: the share of top labels identical to fp32's and the largest probability difference;
and, for the variants whose features can be read (torch ones), the UA of a speaker-independent
probe (logistic regression, 5 speaker-grouped folds over the clips) trained on fp32 features and
tested on each variant's features.

    .venv/bin/python bench/speed.py --clips 1000 --threads 1 2 --repeats 2 --long-minutes 10 --hour
"""
from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]  # bench/ssl.py

import argparse
import json
import platform
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
REF = "torch-fp32"   # the reference of every agreement column


# ---------------------------------------------------------------------------------------- data
def corpus_clips(n: int, seed: int) -> tuple[list[dict], list[dict]]:
    """``n`` short clips (half RAVDESS, half CREMA-D, every speaker) and a disjoint pool for the
    long recordings; rows ``{path, label, speaker, corpus}``."""
    from serkit.corpora import load_corpus

    data = Path(os.environ.get("SERKIT_DATA", ROOT.parent / "shared" / "datasets"))
    rng = np.random.default_rng(seed)
    picked, pool = [], []
    for corpus in ("ravdess", "cremad"):
        df = load_corpus(corpus, data / corpus, label_set="ekman7", label_options={"calm": "neutral"},
                         check_duplicates=False).manifest
        df = df.iloc[rng.permutation(len(df))]
        take = df.groupby("speaker", group_keys=False).head(max(1, -(-n // 2 // df["speaker"].nunique())))
        take = take.iloc[: n // 2]
        rest = df.drop(take.index)
        picked += [{"path": str(r.path), "label": str(r.label), "speaker": f"{corpus}:{r.speaker}",
                    "corpus": corpus} for r in take.itertuples()]
        pool += [str(p) for p in rest["path"].iloc[:400]]
    return picked, pool


def make_recording(pool: list[str], minutes: float, path: Path, seed: int) -> float:
    """A long recording: utterances from ``pool`` with 0.3–2 s pauses (and a faint noise floor)."""
    import soundfile as sf

    from serkit.io.audio import read, prepare

    rng = np.random.default_rng(seed)
    need = int(minutes * 60 * SR)
    with sf.SoundFile(str(path), "w", SR, 1, format="FLAC", subtype="PCM_16") as f:
        written = 0
        while written < need:
            x, sr = read(pool[int(rng.integers(len(pool)))])
            x = prepare(x, sr, name="clip")
            gap = rng.normal(0, 10 ** (-60 / 20), int(rng.uniform(0.3, 2.0) * SR)).astype(np.float32)
            block = np.concatenate([x, gap])[: need - written]
            f.write(block)
            written += len(block)
    return need / SR


# ---------------------------------------------------------------------------------------- workers
def _maxrss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _naive(files: list[str], threads: int) -> dict:
    """The Hugging Face conventions: 30 s padding, the full encoder, fp32, one clip at a time."""
    import torch

    t0 = time.perf_counter()
    from serkit import Predictor
    from serkit.io.audio import read
    from serkit.models.capabilities import model_input

    torch.set_num_threads(threads)
    from serkit.config import InferenceConfig

    p = Predictor.load(inference=InferenceConfig(runtime="torch", precision="fp32", threads=threads))
    ext = p.pipeline.extractors[0]
    enc, fe = ext.load().model, ext.load().feature_extractor
    load_s = time.perf_counter() - t0

    def one(path):
        x, sr = read(path)
        sig = p.preprocess(x, sr, path)
        feats = fe(sig, sampling_rate=SR, return_tensors="pt").input_features  # padded to 30 s
        with torch.inference_mode():
            hs = enc(feats, output_hidden_states=True).hidden_states           # 1500 frames each
        n = max(1, (len(sig) // 160 + 1) // 2)
        h = torch.stack(hs)[:, 0, :n].float()
        stats = torch.cat([h.mean(1), h.std(1, unbiased=False)], -1).reshape(1, -1).numpy()
        X = ext.select(stats.reshape(len(hs), -1))[None]
        return p.estimator.predict_proba(model_input(p.estimator, X))[0], len(sig) / SR

    one(files[0])
    t = time.perf_counter()
    out = [one(f) for f in files]
    wall = time.perf_counter() - t
    return {"load_s": load_s, "wall_s": wall, "audio_s": sum(o[1] for o in out),
            "proba": [o[0].tolist() for o in out], "classes": p.classes}


def _load(variant: str, threads: int, onnx_dir: str | None):
    from serkit import Predictor

    if variant == "baseline":
        import torch

        torch.set_num_threads(threads)
        p = Predictor.load()                      # loads the backbone, which sets the card's threads
        p.pipeline.extractors[0].num_threads = threads
        torch.set_num_threads(threads)
        return p
    from serkit.config import InferenceConfig

    if variant == "onnx-int8":
        return Predictor.load(onnx_dir, inference=InferenceConfig(threads=threads))
    if variant == "default":
        return Predictor.load(inference=InferenceConfig(threads=threads))
    precision = {"torch-fp32": "fp32", "torch-bf16": "bf16"}[variant]
    return Predictor.load(inference=InferenceConfig(runtime="torch", precision=precision, threads=threads))


def worker(job: dict) -> dict:
    files, threads, variant = job["files"], job["threads"], job["variant"]
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if variant == "naive":
        out = _naive(files, threads)
        out["maxrss_mb"] = _maxrss_mb()
        return out
    t0 = time.perf_counter()
    p = _load(variant, threads, job.get("onnx_dir"))
    load_s = time.perf_counter() - t0
    feats: dict[str, np.ndarray] = {}
    if getattr(p, "runtime", "torch") == "torch":
        from serkit.models.capabilities import model_input

        def score(signals, names=None):  # Predictor.score_batch, keeping each clip's features
            X = model_input(p.estimator, p.pipeline.transform_prepared(list(signals), names))
            if names:
                feats.update(zip(names, np.asarray(X, np.float32).reshape(len(X), -1)))
            return np.asarray(p.estimator.predict_proba(X), dtype=np.float64)
        p.score_batch = score
    if job["task"] == "long":
        t = time.perf_counter()
        res = p.predict_long(files[0])
        wall = time.perf_counter() - t
        segs = res.get("segments", [])
        return {"load_s": load_s, "wall_s": wall, "audio_s": job["audio_s"], "maxrss_mb": _maxrss_mb(),
                "segments": [[s["start"], s["end"], s["label"]] for s in segs], "classes": p.classes}
    p.predict_files(files[:16])
    feats.clear()
    t = time.perf_counter()
    res = p.predict_files(files)
    wall = time.perf_counter() - t
    out = {"load_s": load_s, "wall_s": wall, "audio_s": sum(r.get("duration") or 0 for r in res),
           "maxrss_mb": _maxrss_mb(), "classes": p.classes,
           "proba": [[r["scores"].get(c, 0.0) for c in p.classes] if r.get("label") else None for r in res]}
    if feats and job.get("features_out"):   # clips with no speech have no features
        names = [f for f in files if f in feats]
        np.savez(job["features_out"], names=np.asarray(names), X=np.stack([feats[f] for f in names]))
    return out


def run_job(job: dict, pythonpath: str | None = None) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f)
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = [sys.executable, __file__, "--worker", f.name]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    os.unlink(f.name)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed ({job['variant']}, {job['task']}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------- analysis
def probe_ua(ref: np.ndarray, variants: dict[str, np.ndarray], labels: list[str], groups: list[str],
             seed: int) -> dict[str, float]:
    """UA of a logistic-regression probe trained on fp32 features (5 speaker-grouped folds) and
    tested on each variant's features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(labels)
    preds = {k: np.empty(len(y), dtype=object) for k in variants}
    for tr, te in GroupKFold(5).split(ref, y, np.asarray(groups)):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000, random_state=seed))
        clf.fit(ref[tr], y[tr])
        for k, X in variants.items():
            preds[k][te] = clf.predict(X[te])
    return {k: 100 * balanced_accuracy_score(y, v.astype(str)) for k, v in preds.items()}


def agreement(ref: list, other: list) -> tuple[float, float]:
    """(share of identical top labels, largest probability difference) over clips both scored."""
    pairs = [(np.asarray(a), np.asarray(b)) for a, b in zip(ref, other) if a is not None and b is not None]
    same = float(np.mean([np.argmax(a) == np.argmax(b) for a, b in pairs]))
    return 100 * same, float(max(np.abs(a - b).max() for a, b in pairs))


def timeline_agreement(ref: list, other: list, total: float) -> float:
    """Share of 0.1 s steps (over the speech the reference labels) with the same label."""
    def at(segs, t):
        for s, e, lab in segs:
            if s <= t < e:
                return lab
        return None
    ts = np.arange(0, total, 0.1)
    a = [at(ref, t) for t in ts]
    b = [at(other, t) for t in ts]
    keep = [i for i, v in enumerate(a) if v is not None]
    return 100 * float(np.mean([a[i] == b[i] for i in keep])) if keep else float("nan")


# ---------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--clips", type=int, default=1000)
    ap.add_argument("--naive-clips", type=int, default=100)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--variants", nargs="+",
                    default=["naive", "baseline", "torch-fp32", "torch-bf16", "default", "onnx-int8"])
    ap.add_argument("--baseline-rev", default="f0ea18c", help="commit of the 'baseline' variant")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--long-minutes", type=float, default=10.0)
    ap.add_argument("--hour", action="store_true", help="also a 60-minute recording (default variant)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "speed.md"))
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(Path(args.worker).read_text()))))
        return

    args.load_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="serkit-speed-"))
    clips, pool = corpus_clips(args.clips, args.seed)
    files = [c["path"] for c in clips]
    print(f"{len(files)} clips; assembling a {args.long_minutes:g}-minute recording in {tmp}", flush=True)
    long_path = tmp / "long.flac"
    long_s = make_recording(pool, args.long_minutes, long_path, args.seed)
    # the default model's cached ONNX export is made once, before anything is timed
    subprocess.run([sys.executable, "-c", "from serkit import Predictor; Predictor.load()"], check=True)
    if "onnx-int8" in args.variants:
        args.onnx_dir = str(tmp / "int8")
        subprocess.run([sys.executable, "-m", "serkit.cli", "export", "serkit-default", "--format", "onnx",
                        "--quantize", "int8", "--out", args.onnx_dir], check=True, capture_output=True)
    else:
        args.onnx_dir = None
    base_pp = None
    if "baseline" in args.variants:
        base = tmp / "baseline"
        base.mkdir()
        arch = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline_rev, "src"],
                              capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=arch, check=True)
        base_pp = str(base / "src")

    naive_idx = list(range(0, len(files), max(1, len(files) // args.naive_clips)))[: args.naive_clips]
    results: dict = {}
    for rep in range(args.repeats):
        order = args.variants if rep % 2 == 0 else list(reversed(args.variants))
        for threads in args.threads:
            for v in order:
                pp = base_pp if v == "baseline" else None
                job = {"variant": v, "threads": threads, "task": "clips", "onnx_dir": args.onnx_dir,
                       "files": [files[i] for i in naive_idx] if v == "naive" else files,
                       "features_out": str(tmp / f"feat_{v}_{threads}.npz")}
                r = run_job(job, pp)
                key = (v, threads, "clips")
                if key not in results or r["wall_s"] < results[key]["wall_s"]:
                    results[key] = r
                print(f"  clips  {v:10s} {threads} thr: {r['audio_s'] / r['wall_s']:7.1f}x real time, "
                      f"load {r['load_s']:.2f} s, peak {r['maxrss_mb']:.0f} MB", flush=True)
                if v == "naive":
                    continue
                r = run_job({"variant": v, "threads": threads, "task": "long", "files": [str(long_path)],
                             "audio_s": long_s, "onnx_dir": args.onnx_dir}, pp)
                key = (v, threads, "long")
                if key not in results or r["wall_s"] < results[key]["wall_s"]:
                    results[key] = r
                print(f"  long   {v:10s} {threads} thr: {r['audio_s'] / r['wall_s']:7.1f}x real time, "
                      f"peak {r['maxrss_mb']:.0f} MB", flush=True)
    hour = None
    if args.hour:
        hour_path = tmp / "hour.flac"
        hour_s = make_recording(pool, 60, hour_path, args.seed + 1)
        hour = run_job({"variant": "default", "threads": max(args.threads), "task": "long",
                        "files": [str(hour_path)], "audio_s": hour_s})
        print(f"  1 hour default: {hour['audio_s'] / hour['wall_s']:.1f}x real time, "
              f"peak {hour['maxrss_mb']:.0f} MB", flush=True)
    write_report(args, clips, naive_idx, results, tmp, long_s, hour)


def write_report(args, clips, naive_idx, results, tmp, long_s, hour) -> None:
    labels = [c["label"] for c in clips]
    groups = [c["speaker"] for c in clips]
    t_max = max(args.threads)
    loaded = {v: np.load(tmp / f"feat_{v}_{t_max}.npz") for v in args.variants
              if (tmp / f"feat_{v}_{t_max}.npz").exists()}
    common = set.intersection(*[set(map(str, d["names"])) for d in loaded.values()]) if loaded else set()
    keep = [i for i, c in enumerate(clips) if c["path"] in common]
    feats = {}
    for v, d in loaded.items():
        row = {str(n): i for i, n in enumerate(d["names"])}
        feats[v] = d["X"][[row[clips[i]["path"]] for i in keep]]
    ua = (probe_ua(feats[REF], feats, [labels[i] for i in keep], [groups[i] for i in keep], args.seed)
          if REF in feats else {})
    lines = [
        "# Inference speed of the default recogniser",
        "",
        f"`{' '.join(['.venv/bin/python', 'bench/speed.py'] + sys.argv[1:])}` — {date.today()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads as in the "
        "table. Each cell is its own fresh process (best of the repeats); × real time = seconds of audio per "
        f"second of wall time, decoding included. Load average (1 min) at the start {args.load_start:.1f}, "
        f"at the end {os.getloadavg()[0]:.1f} (other work on the machine shares its 2 cores).",
        "",
        f"Short clips: {len(clips)} utterances (RAVDESS and CREMA-D, half each, every speaker; "
        f"{sum(1 for _ in clips)} files), `Predictor.predict_files` from the files. Naive path: "
        f"{len(naive_idx)} of those clips (every {max(1, len(clips) // len(naive_idx))}th).",
        f"Long recording: {long_s / 60:g} minutes assembled from other utterances of the same corpora "
        "with 0.3–2 s pauses, `Predictor.predict_long` (silero VAD, 3 s windows every 1.5 s, smoothing, "
        "merging).",
        "",
        "| variant | threads | clips × real time | vs naive | long recording × real time | load (s) | "
        "peak memory clips / long (MB) | same top label as torch-fp32 (%) | max Δp | probe UA (%) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in args.variants:
        for th in args.threads:
            c = results.get((v, th, "clips"))
            lg = results.get((v, th, "long"))
            if c is None:
                continue
            rt = c["audio_s"] / c["wall_s"]
            naive = results.get(("naive", th, "clips"))
            vs = f"{rt / (naive['audio_s'] / naive['wall_s']):.1f}×" if naive and v != "naive" else "—"
            same, dp = ("—", "—")
            ref = results.get((REF, th, "clips"))
            if ref and v != REF:
                ref_p = [ref["proba"][i] for i in naive_idx] if v == "naive" else ref["proba"]
                s, d = agreement(ref_p, c["proba"])
                same, dp = f"{s:.1f}", f"{d:.3f}"
            elif v == REF:
                same, dp = "100 (reference)", "0"
            lrt = f"{lg['audio_s'] / lg['wall_s']:.1f}" if lg else "—"
            mem = f"{c['maxrss_mb']:.0f} / {lg['maxrss_mb']:.0f}" if lg else f"{c['maxrss_mb']:.0f}"
            u = f"{ua[v]:.1f}" if th == t_max and v in ua else "—"
            lines.append(f"| {v} | {th} | {rt:.1f} | {vs} | {lrt} | {c['load_s']:.2f} | {mem} | {same} | {dp} | {u} |")
    ref_long = results.get((REF, t_max, "long"))
    if ref_long:
        lines += ["", f"Timeline agreement with fp32 ({t_max} threads; share of the reference's speech, "
                  "in 0.1 s steps, with the same label):", ""]
        for v in args.variants:
            lg = results.get((v, t_max, "long"))
            if lg and v != REF:
                lines.append(f"- {v}: {timeline_agreement(ref_long['segments'], lg['segments'], long_s):.1f} %")
    if hour:
        lines += ["", f"One hour (default variant, {t_max} threads): "
                  f"{hour['audio_s'] / hour['wall_s']:.1f}× real time, peak memory {hour['maxrss_mb']:.0f} MB "
                  f"(the {long_s / 60:.0f}-minute recording: "
                  f"{results.get(('default', t_max, 'long'), {}).get('maxrss_mb', float('nan')):.0f} MB) — "
                  "decoded in 30 s blocks, memory does not grow with the length."]
    lines += ["", f"Probe UA ({len(keep)} clips with speech; {t_max} threads): logistic regression on the "
              "torch-fp32 features of the clips, 5 speaker-grouped folds (inductive), tested on each variant's "
              "features (torch variants: the ONNX graphs give probabilities only); it measures how much a "
              "precision change moves the features, not the default model's accuracy (which is in its card)."]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
