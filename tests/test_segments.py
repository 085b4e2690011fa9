"""Long-audio segmentation: block decoding, streaming VAD, windows, smoothing, merging."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import soxr
from pydantic import ValidationError

from serkit.config import SegmentConfig
from serkit.inference import segments as seg_mod
from serkit.inference.segments import NO_SPEECH_NOTE, TOO_SHORT_NOTE, predict_timeline, window_bounds
from serkit.io.audio import AudioError
from serkit.io.stream import stream

SR = 16000
CLASSES = ["calm", "excited"]


def _recording(parts, noise=1e-4, seed=0):
    """``parts``: (seconds, kind) with kind 'sil' or a tone frequency; returns the signal and the
    true (start, end) of each tone burst in seconds."""
    rng = np.random.default_rng(seed)
    out, truth, pos = [], [], 0.0
    for sec, kind in parts:
        n = int(round(sec * SR))
        if kind == "sil":
            out.append(np.zeros(n))
        else:
            out.append(0.3 * np.sin(2 * np.pi * kind * np.arange(n) / SR))
            truth.append((pos, pos + sec))
        pos += sec
    x = np.concatenate(out) + noise * rng.standard_normal(sum(len(o) for o in out))
    return x.astype(np.float32), truth


def _pitch_scores(batch):
    """Fake model: 'calm' for low tones, 'excited' for high ones."""
    out = []
    for a in batch:
        f = np.argmax(np.abs(np.fft.rfft(a))) * SR / len(a)
        out.append([0.8, 0.2] if f < 300 else [0.3, 0.7])
    return np.array(out)


def _energy(**kw):
    return SegmentConfig(vad="energy", speech_pad_s=0.0, **kw)


def _speech(tl):
    return [s for s in tl.segments if s["label"] is not None]


# --------------------------------------------------------------------------- config and stream
def test_segment_config_defaults_and_validation():
    cfg = SegmentConfig()
    assert cfg.vad == "silero" and cfg.window_s == 3.0 and cfg.hop_s == 1.5 and cfg.block_s == 30.0
    assert all(f.description for f in SegmentConfig.model_fields.values())
    with pytest.raises(ValidationError, match="hop_s"):
        SegmentConfig(window_s=2, hop_s=3)
    with pytest.raises(ValidationError):
        SegmentConfig(vad="webrtc")


def test_stream_resamples_in_blocks_like_one_pass(tmp_path):
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal((22050 * 3, 2))).astype(np.float32)
    path = tmp_path / "stereo.flac"
    sf.write(path, x, 22050)
    data, _ = sf.read(path, dtype="float32")
    ref = soxr.resample(data.mean(axis=1), 22050, SR, quality="HQ")
    blocks = list(stream(path, block_s=0.4))
    assert len(blocks) > 5 and blocks[0][0] == 0
    assert all(s == sum(len(b) for _, b in blocks[:i]) for i, (s, _) in enumerate(blocks))
    y = np.concatenate([b for _, b in blocks])
    assert y.dtype == np.float32 and len(y) == len(ref)
    np.testing.assert_allclose(y, ref, atol=1e-6)


def test_stream_errors_name_the_file(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all")
    with pytest.raises(AudioError, match="notes.wav"):
        list(stream(bad))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav.*empty"):
        list(stream(empty))
    with pytest.raises(AudioError, match="missing.flac"):
        list(stream(tmp_path / "missing.flac"))
    nan = np.zeros(SR * 2, dtype=np.float32)
    nan[SR + 5] = np.nan
    nanfile = tmp_path / "nan.wav"
    sf.write(nanfile, nan, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav.*NaN"):
        list(stream(nanfile, block_s=0.5))


# --------------------------------------------------------------------------- energy VAD (exact)
def test_energy_vad_boundaries_and_non_speech_labels():
    x, truth = _recording([(2, "sil"), (4, 220), (3, "sil"), (2.5, 520), (2, "sil")])
    tl = predict_timeline((x, SR), _pitch_scores, CLASSES, _energy())
    speech = _speech(tl)
    assert [s["label"] for s in speech] == ["calm", "excited"]
    for s, (a, b) in zip(speech, truth):
        assert abs(s["start"] - a) <= 0.04 and abs(s["end"] - b) <= 0.04  # one 32 ms frame
    # the timeline covers the whole recording; every other stretch is non-speech without scores
    assert tl.segments[0]["start"] == 0 and tl.segments[-1]["end"] == tl.duration == 13.5
    assert all(p["end"] == n["start"] for p, n in zip(tl.segments, tl.segments[1:]))
    silent = [s for s in tl.segments if s["label"] is None]
    assert len(silent) == 3 and all(s["scores"] is None and s["confidence"] is None for s in silent)
    d = tl.to_dict()
    assert d["speech"] is True and d["label"] == "calm" and "note" not in d
    assert set(d["scores"]) == set(CLASSES) and d["confidence"] == max(d["scores"].values())


def test_no_speech_results():
    noop = _pitch_scores
    for x in (np.zeros(0, np.float32), np.zeros(5 * SR, np.float32)):
        d = predict_timeline((x, SR), noop, CLASSES, _energy()).to_dict()
        assert d["label"] is None and d["scores"] == {} and d["confidence"] is None
        assert d["speech"] is False and d["note"] == NO_SPEECH_NOTE
        assert all(s["label"] is None for s in d["segments"])
    # a 0.6 s burst: speech, but shorter than min_window_s -> reported, never labelled
    x, _ = _recording([(1, "sil"), (0.6, 220), (1, "sil")])
    d = predict_timeline((x, SR), noop, CLASSES, _energy()).to_dict()
    assert d["speech"] is False and d["label"] is None and d["note"] == NO_SPEECH_NOTE
    assert [s.get("note") for s in d["segments"]] == [None, TOO_SHORT_NOTE, None]


def test_files_empty_header_and_unreadable(tmp_path):
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros(0, np.float32), SR)
    tl = predict_timeline(zero, _pitch_scores, CLASSES, _energy())
    assert not tl.speech and tl.duration == 0 and tl.path == str(zero)
    bad = tmp_path / "broken.flac"
    bad.write_bytes(b"fLaC garbage" * 10)
    with pytest.raises(AudioError, match="broken.flac"):
        predict_timeline(bad, _pitch_scores, CLASSES, _energy())


def test_block_length_does_not_change_the_result(tmp_path):
    # bursts straddle many block boundaries; one region is much longer than a block
    x, _ = _recording([(1.3, "sil"), (2.2, 220), (0.7, "sil"), (12.9, 520), (1.1, "sil"),
                       (1.7, 220), (2.0, "sil")], noise=1e-3)
    path = tmp_path / "rec.flac"
    sf.write(path, soxr.resample(x, SR, 22050), 22050)  # resampled on the way in
    cfg = dict(vad="energy", speech_pad_s=0.2, min_silence_s=0.3)
    one = predict_timeline(path, _pitch_scores, CLASSES, SegmentConfig(block_s=100, **cfg))
    for block_s in (0.37, 1.0):
        small = predict_timeline(path, _pitch_scores, CLASSES, SegmentConfig(block_s=block_s, **cfg))
        assert small.to_dict(windows=True) == one.to_dict(windows=True)
    assert [s["label"] for s in _speech(one)] == ["calm", "excited", "calm"]


def test_memory_holds_one_block_plus_lookback(monkeypatch):
    """A 60 s region with 2 s blocks: windows are cut while it goes on, the buffer stays small."""
    held = []
    orig = seg_mod._Buffer.append

    def spy(self, block):
        orig(self, block)
        held.append(len(self.data))

    monkeypatch.setattr(seg_mod._Buffer, "append", spy)
    x, _ = _recording([(1, "sil"), (60, 220), (1, "sil")])
    cfg = _energy(block_s=2.0)
    tl = predict_timeline((x, SR), _pitch_scores, CLASSES, cfg)
    assert len(tl.windows) == 40 and _speech(tl)[0]["end"] == pytest.approx(61, abs=0.04)
    assert max(held) <= 2 * SR + seg_mod._lookback(cfg) < 8 * SR


# --------------------------------------------------------------------------- windows, smoothing, merging
def test_window_bounds():
    cfg = SegmentConfig()
    assert window_bounds(0, 9 * SR, cfg) == [(int(i * 1.5 * SR), int((i * 1.5 + 3) * SR)) for i in range(5)]
    assert window_bounds(0, 10 * SR, cfg)[-1] == (7 * SR, 10 * SR)  # aligned to the end
    assert window_bounds(SR, int(2.5 * SR), cfg) == [(SR, int(2.5 * SR))]  # one short window
    assert window_bounds(0, int(0.9 * SR), cfg) == []  # below min_window_s


def _scripted(p_excited):
    """Fake score_batch returning the given P(excited) for the windows in the order scored."""
    rows = iter(p_excited)
    return lambda batch: np.array([[1 - p, p] for p in (next(rows) for _ in batch)])


# one burst [0.512, 10.112) s (frame-aligned); windows start at 0.512 + 1.5 k and one ends at 10.112:
# [0.512, 3.512] [2.012, 5.012] [3.512, 6.512] [5.012, 8.012] [6.512, 9.512] [7.112, 10.112]
# owned spans (midpoints of centres): 0.512 | 2.762 | 4.262 | 5.762 | 7.262 | 8.312 | 10.112
P = [0.1, 0.2, 0.9, 0.2, 0.8, 0.9]
SPANS = [2.25, 1.5, 1.5, 1.5, 1.05, 1.8]


def _burst():
    return _recording([(0.512, "sil"), (9.6, 220), (1.0, "sil")])[0]


def test_smoothing_and_merging_by_hand():
    cfg = _energy(smoothing="moving_average", smoothing_k=3)
    tl = predict_timeline((_burst(), SR), _scripted(P), CLASSES, cfg)
    assert [(w["start"], w["end"]) for w in tl.windows] == [
        (0.512, 3.512), (2.012, 5.012), (3.512, 6.512), (5.012, 8.012), (6.512, 9.512), (7.112, 10.112)]
    smooth = [(0.1 + 0.2) / 2, (0.1 + 0.2 + 0.9) / 3, (0.2 + 0.9 + 0.2) / 3, (0.9 + 0.2 + 0.8) / 3,
              (0.2 + 0.8 + 0.9) / 3, (0.8 + 0.9) / 2]
    assert [w["smoothed"]["excited"] for w in tl.windows] == pytest.approx(smooth, abs=1e-6)
    speech = _speech(tl)  # calm calm calm | excited excited excited
    assert [(s["start"], s["end"], s["label"]) for s in speech] == [
        (0.512, 5.762, "calm"), (5.762, 10.112, "excited")]
    calm = np.dot(smooth[:3], SPANS[:3]) / sum(SPANS[:3])
    excited = np.dot(smooth[3:], SPANS[3:]) / sum(SPANS[3:])
    assert speech[0]["scores"]["excited"] == pytest.approx(calm, abs=1e-5)
    assert speech[1]["scores"]["excited"] == pytest.approx(excited, abs=1e-5)
    assert speech[1]["confidence"] == pytest.approx(excited, abs=1e-5)
    # overall: duration-weighted mean of the unsmoothed window scores
    overall = np.dot(P, SPANS) / sum(SPANS)
    assert tl.scores["excited"] == pytest.approx(overall, abs=1e-5)
    assert tl.label == ("excited" if overall > 0.5 else "calm")


def test_no_smoothing_and_no_merging():
    raw = predict_timeline((_burst(), SR), _scripted(P), CLASSES, _energy(smoothing="none"))
    assert [(s["start"], s["end"], s["label"]) for s in _speech(raw)] == [
        (0.512, 4.262, "calm"), (4.262, 5.762, "excited"), (5.762, 7.262, "calm"),
        (7.262, 10.112, "excited")]
    every = predict_timeline((_burst(), SR), _scripted(P), CLASSES,
                             _energy(smoothing="none", merge="none"))
    assert len(_speech(every)) == 6
    assert [s["scores"]["excited"] for s in _speech(every)] == pytest.approx(P)


def test_bad_score_batch_output_is_reported():
    with pytest.raises(ValueError, match="expected \\[1, 2\\]"):
        predict_timeline((_burst(), SR), lambda b: np.ones((len(b), 3)) / 3, CLASSES,
                         _energy(batch_size=1))


# --------------------------------------------------------------------------- silero on real speech
def _espeak(tmp_path, text, name):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path / f"{name}.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    x, sr = sf.read(path, dtype="float32")
    return soxr.resample(x, sr, SR).astype(np.float32)


def _glue(clips, gaps):
    """clips separated by silences ``gaps`` (len(clips) + 1 values); truth = nonzero extent."""
    rng = np.random.default_rng(0)
    parts, truth, pos = [np.zeros(int(gaps[0] * SR), np.float32)], [], int(gaps[0] * SR)
    for clip, gap in zip(clips, gaps[1:]):
        nz = np.flatnonzero(np.abs(clip) > 1e-3)
        truth.append(((pos + nz[0]) / SR, (pos + nz[-1]) / SR))
        parts += [clip, np.zeros(int(gap * SR), np.float32)]
        pos += len(clip) + int(gap * SR)
    x = np.concatenate(parts)
    return (x + 2e-3 * rng.standard_normal(len(x))).astype(np.float32), truth


def test_silero_finds_espeak_speech(tmp_path):
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    clips = [_espeak(tmp_path, "I told you to stop. This is not what we agreed on.", "a"),
             _espeak(tmp_path, "Good morning everyone, the weather is lovely today.", "b")]
    x, truth = _glue(clips, [1.5, 2.0, 1.5])
    cfg = SegmentConfig(block_s=1.3)  # silero, default thresholds; many block boundaries
    flat = lambda b: np.tile([0.5, 0.5], (len(b), 1))  # noqa: E731
    tl = predict_timeline((x, SR), flat, CLASSES, cfg)
    speech = _speech(tl)
    assert len(speech) == 2
    for s, (a, b) in zip(speech, truth):
        assert abs(s["start"] - a) <= 0.3 and abs(s["end"] - b) <= 0.3
    for mid in (0.7, (truth[0][1] + truth[1][0]) / 2, tl.duration - 0.5):
        assert next(s for s in tl.segments if s["start"] <= mid < s["end"])["label"] is None
    # the streaming detector agrees with faster-whisper's one-pass silero on the whole signal
    ref = get_speech_timestamps(x, VadOptions(threshold=0.5, min_speech_duration_ms=250,
                                              min_silence_duration_ms=500, speech_pad_ms=100))
    assert [(s["start"], s["end"]) for s in speech] == [
        (round(r["start"] / SR, 3), round(r["end"] / SR, 3)) for r in ref]
    assert predict_timeline((x, SR), flat, CLASSES, SegmentConfig(block_s=60)).segments == tl.segments


@pytest.mark.corpus
def test_silero_on_corpus_clips(shared_datasets):
    librosa = pytest.importorskip("librosa")
    files = sorted((shared_datasets / "emodb" / "audio").glob("*.flac"))
    if len(files) < 200:
        pytest.skip("EmoDB audio not found")
    clips = [sf.read(files[i], dtype="float32")[0] for i in (120, 180)]
    x, _ = _glue(clips, [1.5, 2.0, 1.5])
    truth, pos = [], int(1.5 * SR)
    for clip in clips:  # speech extent of each clip: librosa trim at 40 dB
        _, (i, j) = librosa.effects.trim(clip, top_db=40)
        truth.append(((pos + i) / SR, (pos + j) / SR))
        pos += len(clip) + 2 * SR
    tl = predict_timeline((x, SR), lambda b: np.tile([0.5, 0.5], (len(b), 1)), CLASSES,
                          SegmentConfig(block_s=2.0))
    speech = [s for s in tl.segments if s["label"] is not None or s.get("note") == TOO_SHORT_NOTE]
    for a, b in truth:  # first and last speech of each clip within 0.3 s of its extent
        inside = [s for s in speech if a - 0.3 <= s["start"] and s["end"] <= b + 0.3]
        assert inside and abs(inside[0]["start"] - a) <= 0.3 and abs(inside[-1]["end"] - b) <= 0.3
    assert all(any(a - 0.3 <= s["start"] and s["end"] <= b + 0.3 for a, b in truth) for s in speech)
    assert tl.speech
