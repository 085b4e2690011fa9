"""The model card in words (README.md of a model directory, ``serkit models``)."""
from __future__ import annotations

from typing import Any

__all__ = ["render_card", "card_summary", "class_colors"]


def _pm(m: dict | None) -> str:
    return "–" if not m else f"{100 * m['mean']:.1f} ± {100 * m['std']:.1f}"


def card_summary(card: dict[str, Any]) -> dict[str, str]:
    """A few fields for listings: classes, backbone, headline UA, licence."""
    ev = (card.get("evaluations") or [{}])[0]
    bb = card.get("backbone") or {}
    return {"name": card.get("name", "?"), "classes": ", ".join(card.get("classes", [])),
            "backbone": bb.get("id", "–"), "features": card["features"]["streams"][0]["kind"],
            "model": (card.get("model") or {}).get("name", "?"),
            "ua": _pm(ev.get("ua")) if ev else "–",
            "protocol": (ev.get("protocol") or {}).get("description", "not evaluated") if ev else "not evaluated",
            "licence": (card.get("licence") or {}).get("summary", "")}


def _ece_text(ev: dict) -> str:
    """ECE (15 confidence bins) of an evaluation, before and after temperature scaling when known."""
    if not ev.get("ece"):
        return ""
    if ev.get("ece_uncalibrated"):
        return (f" Expected calibration error (15 bins): {_pm(ev['ece_uncalibrated'])} % uncalibrated, "
                f"{_pm(ev['ece'])} % after temperature scaling (T {ev['temperature']['mean']:.2f} ± "
                f"{ev['temperature']['std']:.2f} over folds, each fitted on that fold's training speakers).")
    return f" Expected calibration error (15 bins): {_pm(ev['ece'])} %."


def _augmentation_text(aug: dict[str, Any] | None) -> str:
    if not aug or not aug.get("copies"):
        return ""
    names = ", ".join(f"{k} {v}" if isinstance(v, dict) else k for k, v in aug.get("transforms", {}).items())
    return (f" Trained also on {aug.get('rows', '?')} augmented copies ({aug['copies']} per clip, seed "
            f"{aug.get('seed')}; audiomentations: {names}).")


def render_card(card: dict[str, Any]) -> str:
    """Markdown model card from ``model.json``."""
    td = card.get("training_data", {})
    lines = [f"# {card.get('name', 'serkit model')}", ""]
    if card.get("description"):
        lines += [card["description"], ""]
    bb = card.get("backbone") or {}
    feats = card["features"]["streams"]
    lines += ["## What it recognises", "",
              f"Classes ({card.get('label_set', '?')} label set): **{', '.join(card.get('classes', []))}**.",
              f"Label options: {card.get('label_options', {})}.", "",
              f"Features: {', '.join(s['kind'] for s in feats)} {feats[0].get('params', {})}"
              + (f"; backbone `{bb.get('id')}`" if bb else "")
              + (f" (weights checksum `{bb['checksum'][:16]}…`)" if bb.get("checksum") else "")
              + f". Model: `{(card.get('model') or {}).get('name')}` "
              f"{(card.get('model') or {}).get('params', {})}"
              + (f", chosen by inner speaker-grouped search: {card['model']['best_params']}"
                 if (card.get("model") or {}).get("best_params") else "") + ".",
              "Inductive: no statistics of test speakers are used; it works on one clip of an unknown "
              "speaker.", "",
              "## Training data", "",
              f"{td.get('utterances', '?')} utterances, {td.get('speakers', '?')} speakers, "
              f"{td.get('hours', '?')} h; {td.get('skipped_inputs', 0)} input(s) skipped as unusable."
              + _augmentation_text(td.get("augmentation")), "",
              "| corpus | utterances | speakers | terms |", "|---|---|---|---|"]
    for c, v in td.get("corpora", {}).items():
        lines.append(f"| {c} | {v['utterances']} | {v['speakers']} | {v.get('licence') or 'own corpus'} |")
    lines += ["", "| class | utterances | speakers | corpora |", "|---|---|---|---|"]
    for c, v in td.get("per_class", {}).items():
        lines.append(f"| {c} | {v['utterances']} | {v['speakers']} | {', '.join(v['corpora'])} |")
    lines += ["", "## Evaluation", ""]
    evs = card.get("evaluations") or []
    if not evs:
        lines.append("Not evaluated (trained with `--no-eval`).")
    for ev in evs:
        p = ev["protocol"]
        tag = "speaker-independent" if p.get("speaker_independent") else "SPEAKER-DEPENDENT"
        lines += [f"### {ev['name']}: {ev.get('description', '')}", "",
                  f"{p.get('description', p.get('kind'))} ({tag}); classes {', '.join(ev['classes'])}.", "",
                  f"UA {_pm(ev['ua'])} %, WA {_pm(ev['wa'])} %, macro-F1 {_pm(ev['macro_f1'])} %."
                  + _ece_text(ev), "",
                  "| per class | recall % |", "|---|---|"]
        lines += [f"| {c} | {100 * r:.1f} |" for c, r in ev["per_class_recall"].items()]
        lines += ["", "| corpus | UA % |", "|---|---|"]
        lines += [f"| {c} | {100 * u:.1f} |" for c, u in ev["per_corpus_ua"].items()]
        lines.append("")
    cal = card.get("calibration")
    if cal:
        lines += ["## Calibration", "",
                  f"Probabilities are temperature-scaled: log-probabilities divided by T = "
                  f"{cal['temperature']:.3f} before the softmax (labels unchanged), fitted by "
                  f"{cal.get('fitted_on', cal.get('split', ''))}."
                  + (f" {cal['note']}" if cal.get("note") else ""), ""]
    lic = card.get("licence") or {}
    lines += ["## Licence", "", lic.get("summary", "unknown"), ""]
    for c, t in (lic.get("corpora") or {}).items():
        lines.append(f"- {c}: {t}")
    lines += ["", f"serkit {card.get('serkit_version', '?')}; seed {card.get('seed')}; "
              f"`serkit train config.yaml --out DIR` reproduces it.", ""]
    return "\n".join(lines)


def class_colors(classes) -> dict[str, str]:
    """Colour of each class for pages (the web page of ``serkit serve``, subtitles): the fixed
    colour of its canonical emotion (:data:`serkit.corpora.manifest.EMOTION_COLORS`, the one the
    reports use); a merged label takes its first part's; other labels get a neutral grey."""
    from serkit.corpora.manifest import EMOTION_COLORS, canonical_emotion

    out = {}
    for c in classes:
        canon = canonical_emotion(c)
        if canon is None:
            for sep in ("+", "/", "|"):
                if sep in str(c):
                    canon = canonical_emotion(str(c).split(sep)[0])
                    break
        out[str(c)] = EMOTION_COLORS.get(canon, "#6f6f6f") if canon else "#6f6f6f"
    return out
