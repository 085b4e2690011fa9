"""``serkit demo``: the recogniser on a one-minute recording with several emotions.

The recording is built from RAVDESS clips of one actor when the shared corpora are present
(``SERKIT_DATA``, default ``../shared/datasets``), otherwise from speech synthesised with
espeak-ng, otherwise from ``examples/demo_synth.opus`` of the source tree. The default model then
gives its emotion timeline (printed, saved as JSON and as a picture) and emotion-tagged subtitles.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

#: RAVDESS actor 12, (emotion code, intensity 01 normal / 02 strong, statement 1 or 2); neutral has
#: only normal intensity
RAVDESS_PLAN = [("01", "01", 1), ("03", "02", 1), ("05", "02", 2), ("04", "02", 2), ("06", "02", 1),
                ("01", "01", 2), ("07", "02", 1), ("08", "02", 2), ("05", "01", 1), ("03", "01", 2),
                ("04", "01", 1), ("06", "01", 2), ("07", "01", 2), ("08", "01", 1), ("05", "02", 1),
                ("03", "02", 2), ("04", "02", 1), ("07", "02", 2), ("06", "02", 2), ("08", "02", 1)]
RAVDESS_EMOTIONS = {"01": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fear",
                    "07": "disgust", "08": "surprise"}
#: (text, espeak-ng pitch, speed wpm, amplitude, intended emotion)
SYNTH_PLAN = [
    ("Good morning. The meeting starts at nine, in the second room.", 50, 165, 100, "neutral"),
    ("Yes! We won! This is the best news all year!", 85, 200, 160, "happy"),
    ("I told you three times to stop doing that!", 35, 210, 200, "angry"),
    ("She is gone. I really miss her every single day.", 30, 110, 70, "sad"),
    ("What was that noise? Is somebody in the house?", 90, 190, 120, "fear"),
    ("Okay. Let us go through the numbers once more.", 50, 160, 100, "neutral"),
    ("No way! You did all of this for me?", 95, 185, 150, "surprise"),
    ("Get out of my office, right now, and do not come back!", 30, 220, 200, "angry"),
    ("Nobody came to the party. Not a single person.", 28, 105, 65, "sad"),
    ("The train to Boston leaves from platform four at ten past six.", 50, 160, 100, "neutral"),
    ("I got the job! I start on Monday!", 90, 205, 160, "happy"),
    ("Please, please do not hang up. I am scared.", 88, 200, 110, "fear"),
    ("That smell is disgusting. What did you cook?", 40, 140, 130, "disgust"),
    ("Thank you. That was a lovely evening, really.", 70, 170, 120, "happy"),
]
GAP_S = 0.7


def _write(out: Path, parts: list[np.ndarray], labels: list[str], sr: int = 16000) -> tuple[Path, list[dict]]:
    audio, truth, t = [], [], 0.0
    for x, lab in zip(parts, labels):
        audio += [x, np.zeros(int(GAP_S * sr), np.float32)]
        truth.append({"start": round(t, 2), "end": round(t + len(x) / sr, 2), "label": lab})
        t += len(x) / sr + GAP_S
    sf.write(str(out), np.concatenate(audio), sr, format="FLAC")
    return out, truth


def _from_ravdess(root: Path, out: Path) -> tuple[Path, list[dict], str] | None:
    from serkit.io.audio import load_audio

    files = [root / "Actor_12" / f"03-01-{e}-{i}-0{st}-01-12.flac" for e, i, st in RAVDESS_PLAN]
    if not all(f.is_file() for f in files):
        return None
    parts = [load_audio(f, trim_silence=True, top_db=35) for f in files]
    rec, truth = _write(out, parts, [RAVDESS_EMOTIONS[e] for e, _, _ in RAVDESS_PLAN])
    return rec, truth, (f"{len(files)} RAVDESS clips of actor 12 (part of the default model's training "
                        "data: see its card for held-out figures)")


def _from_espeak(out: Path) -> tuple[Path, list[dict], str] | None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    from serkit.io.audio import load_audio

    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (text, pitch, speed, amp, _) in enumerate(SYNTH_PLAN):
            wav = Path(tmp) / f"{i}.wav"
            subprocess.run([exe, "-v", "en-us", "-p", str(pitch), "-s", str(speed), "-a", str(amp),
                            "-w", str(wav), text], check=True, capture_output=True)
            parts.append(load_audio(wav, trim_silence=True))
    rec, truth = _write(out, parts, [p[4] for p in SYNTH_PLAN])
    return rec, truth, "speech synthesised with espeak-ng (robotic: the emotions are only acted by pitch and speed)"


def build_recording(out_dir: Path, data_dir: str | None = None) -> tuple[Path, list[dict], str]:
    """The demo recording, the intended emotion of each part, and where it came from."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "recording.flac"
    base = Path(data_dir or os.environ.get("SERKIT_DATA", "../shared/datasets"))
    for make in (lambda: _from_ravdess(base / "ravdess", out), lambda: _from_espeak(out)):
        got = make()
        if got is not None:
            return got
    shipped = Path(__file__).resolve().parents[3] / "examples" / "demo_synth.opus"
    if shipped.is_file():
        return shipped, [{"start": None, "end": None, "label": p[4]} for p in SYNTH_PLAN], \
            f"{shipped} (speech synthesised with espeak-ng)"
    raise FileNotFoundError("serkit demo needs the RAVDESS corpus (SERKIT_DATA), espeak-ng, or "
                            "examples/demo_synth.opus from the source tree")


def truth_at(truth: list[dict], start: float, end: float) -> str:
    best, overlap = "", 0.0
    for t in truth:
        if t["start"] is None:
            continue
        o = min(end, t["end"]) - max(start, t["start"])
        if o > overlap:
            best, overlap = t["label"], o
    return best


def run_demo(out_dir: Path, model: str | None, console) -> None:
    import json

    from rich.table import Table

    from serkit.corpora.manifest import EMOTION_COLORS
    from serkit.inference.predictor import Predictor
    from serkit.reporting.timeline import plot_timeline

    start = time.time()
    rec, truth, origin = build_recording(out_dir)
    console.print(f"[bold]recording[/]: {rec} — {origin}")
    t0 = time.time()
    predictor = Predictor.load(model, say=lambda msg: console.print(f"[dim]{msg}[/]"))
    t1 = time.time()
    console.print(f"model: {predictor.name} ({', '.join(predictor.classes)}), loaded in {t1 - t0:.1f} s")
    tl = predictor.predict_long(str(rec))
    t2 = time.time()
    dur = tl["duration"]
    table = Table(title=f"emotion timeline of {rec.name} ({dur:.0f} s, {dur / max(t2 - t1, 1e-9):.0f}× real time)")
    for col in ("start", "end", "emotion", "confidence", "acted as"):
        table.add_column(col, justify="right" if col in ("start", "end", "confidence") else "left")
    for s in tl["segments"]:
        if s["label"] is None:
            continue
        acted = truth_at(truth, s["start"], s["end"])
        mark = "" if not acted else (" ✓" if acted == s["label"] else "")
        table.add_row(f"{s['start']:.1f}", f"{s['end']:.1f}", f"[{EMOTION_COLORS.get(s['label'], 'white')}]"
                      f"{s['label']}[/]", f"{s['confidence']:.2f}", acted + mark)
    console.print(table)
    (out_dir / "timeline.json").write_text(json.dumps(tl, indent=1))
    (out_dir / "truth.json").write_text(json.dumps(truth, indent=1))
    png = plot_timeline(tl, out_dir / "timeline.png", title=f"serkit demo: {origin.split(' (')[0]}")
    console.print("writing subtitles (offline Whisper transcription)…")
    srt = predictor.subtitles(str(rec), fmt="srt", language="en")
    (out_dir / "recording.srt").write_text(srt)
    console.print("\n".join(srt.strip().splitlines()[:12]) + ("\n…" if srt.count("\n\n") > 3 else ""),
                  markup=False)
    console.print(f"written: {out_dir / 'timeline.json'}, {png}, {out_dir / 'recording.srt'} "
                  f"({time.time() - start:.0f} s in all)")
