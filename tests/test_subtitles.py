"""Subtitles: cue splitting, emotion tags, SRT / WebVTT through their libraries, real whisper-base."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import srt
import webvtt

from serkit.backbones import offline
from serkit.config import SegmentConfig
from serkit.inference.subtitles import (
    Cue, WhisperTranscriber, css_class, make_subtitles, split_cues, to_vtt,
)

SR = 16000
CLASSES = ["angry", "sad"]


def _words(text, start, step):
    return [{"start": start + i * step, "end": start + (i + 1) * step - 0.05, "word": " " + w}
            for i, w in enumerate(text.split())]


def test_split_cues_respects_limits_and_prefers_punctuation():
    text = ("Well, I waited for you at the station for over an hour. Nobody came and nobody called, "
            "so I finally went home alone in the rain")
    seg = {"start": 0.0, "end": 12.0, "text": text, "words": _words(text, 0.0, 0.5)}
    cues = split_cues([seg], max_s=7.0, max_chars=84)
    assert len(cues) >= 2
    assert all(c.end - c.start <= 7.0 and len(c.text) <= 84 for c in cues)
    assert " ".join(c.text for c in cues) == text  # nothing lost or reordered, words intact
    assert cues[0].text.endswith("hour.")  # cut after the sentence, not mid-phrase
    # a long pause between words starts a new cue even within one segment
    gap = _words("Hello there.", 0.0, 0.5) + _words("Anyone home?", 3.0, 0.5)
    assert [c.text for c in split_cues([{"start": 0, "end": 4, "text": "", "words": gap}])] == [
        "Hello there.", "Anyone home?"]
    # a segment without word timestamps becomes one cue
    assert split_cues([{"start": 1, "end": 2, "text": " Hi  there ", "words": []}])[0].text == "Hi there"


def _loud_then_quiet():
    """3 s loud tone (angry), 1 s pause, 3 s quiet tone (sad), 0.5 s quiet tone."""
    t = np.arange(3 * SR) / SR
    tone = np.sin(2 * np.pi * 200 * t)
    x = np.concatenate([0.5 * tone, np.zeros(SR), 0.02 * tone, np.zeros(SR // 2),
                        0.02 * tone[:SR // 2], np.zeros(SR)])
    return x.astype(np.float32)


def _loudness_scores(batch):
    return np.array([[0.9, 0.1] if np.sqrt(np.mean(a ** 2)) > 0.1 else [0.2, 0.8] for a in batch])


def _fake_transcriber(audio, language):
    assert audio.dtype == np.float32 and language in (None, "en")
    spans = [("I told you to stop.", 0.0, 3.0), ("Fine & <quiet> now.", 4.0, 7.0), ("Oh.", 7.5, 8.0)]
    return [{"start": a, "end": b, "text": " " + t, "words": _words(t, a, (b - a) / len(t.split()))}
            for t, a, b in spans]


def test_srt_with_tags_parses_back(tmp_path):
    path = tmp_path / "talk.wav"
    sf.write(path, _loud_then_quiet(), SR)
    out = make_subtitles(path, _loudness_scores, CLASSES, fmt="srt", transcriber=_fake_transcriber)
    subs = list(srt.parse(out))
    assert [s.index for s in subs] == [1, 2, 3]
    assert subs[0].content == "[angry] I told you to stop."
    assert subs[1].content.startswith("[sad] Fine")
    assert subs[2].content == "Oh."  # 0.45 s: not enough speech for a tag
    assert subs[0].start.total_seconds() == 0 and subs[1].end.total_seconds() == pytest.approx(6.95)


def test_vtt_with_styles_parses_back():
    styles = {"angry": "#d62728", "sad": "rgb(31, 119, 180)"}
    out = make_subtitles((_loud_then_quiet(), SR), _loudness_scores, CLASSES, fmt="vtt",
                         styles=styles, transcriber=_fake_transcriber)
    vtt = webvtt.from_string(out)
    caps = vtt.captions
    assert len(caps) == 3
    assert caps[0].text == "[angry] I told you to stop." and "<c.emo-angry>" in caps[0].raw_text
    assert caps[1].text.startswith("[sad] Fine &amp; &lt;quiet&gt;") and "<c.emo-sad>" in caps[1].raw_text
    assert caps[2].raw_text == "Oh."
    style = "\n".join(s.text for s in vtt.styles)
    assert "::cue(.emo-angry) { color: #d62728; }" in style and "rgb(31, 119, 180)" in style
    assert caps[1].start == "00:00:04.000"
    # without colours: tags in the text, no STYLE block, no class spans
    plain = webvtt.from_string(make_subtitles((_loud_then_quiet(), SR), _loudness_scores, CLASSES,
                                              fmt="vtt", transcriber=_fake_transcriber))
    assert not plain.styles and plain.captions[0].raw_text == "[angry] I told you to stop."


def test_writer_edge_cases():
    assert css_class("pleasant surprise") == "emo-pleasant-surprise"
    with pytest.raises(ValueError, match="CSS colour"):
        to_vtt([Cue(0, 1, "x", "angry")], {"angry": "red; } body { display:none"})
    assert webvtt.from_string(to_vtt([])).captions == []
    with pytest.raises(ValueError, match="srt, vtt"):
        make_subtitles((np.zeros(SR, np.float32), SR), _loudness_scores, CLASSES, fmt="ass",
                       transcriber=_fake_transcriber)
    # empty audio: nothing to transcribe, an empty but valid file
    assert make_subtitles((np.zeros(0, np.float32), SR), _loudness_scores, CLASSES,
                          transcriber=_fake_transcriber) == ""


def test_unavailable_transcriber_names_the_pip_packages(monkeypatch, tmp_path):
    monkeypatch.setenv("SERKIT_CACHE", str(tmp_path))
    fake = offline.OfflineModel(packages=(("serkit-no-such-wheel", "9.9"),), parts=("model.bin",),
                                english_only=False)
    monkeypatch.setitem(offline.OFFLINE_MODELS, "whisper-fake", fake)
    with pytest.raises(ModuleNotFoundError,
                       match="transcriber is unavailable.*pip install serkit-no-such-wheel"):
        WhisperTranscriber(SegmentConfig(whisper_model="whisper-fake"))
    with pytest.raises(ValueError, match="whisper-base"):
        WhisperTranscriber(SegmentConfig(whisper_model="whisper-huge"))


# --------------------------------------------------------------------------- real transcription
def test_espeak_speech_with_offline_whisper_base(tmp_path, monkeypatch):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    try:
        offline.ct2_files("whisper-base")
    except ModuleNotFoundError as exc:
        pytest.skip(str(exc))
    monkeypatch.setenv("SERKIT_CACHE", str(tmp_path / "cache"))
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "I told you to stop. This is not what we agreed on."],
                   check=True, capture_output=True)
    x, sr = sf.read(wav, dtype="float32")
    padded = tmp_path / "padded.wav"
    sf.write(padded, np.concatenate([np.zeros(sr), x, np.zeros(sr)]), sr)
    cfg = SegmentConfig(beam_size=1, whisper_compute_type="int8", whisper_device="cpu")
    out = make_subtitles(padded, lambda b: np.tile([0.7, 0.3], (len(b), 1)), CLASSES,
                         language="en", fmt="srt", cfg=cfg)
    subs = list(srt.parse(out))
    text = " ".join(s.content for s in subs).lower()
    assert "stop" in text and "agreed" in text
    assert subs[0].content.startswith("[angry] ")
    assert 0.7 <= subs[0].start.total_seconds() <= 1.5  # speech starts after the 1 s of silence
    folder = offline.ct2_model_dir("whisper-base")  # assembled once, then reused
    assert folder.parent.parent == tmp_path / "cache" and (folder / "tokenizer.json").exists()
