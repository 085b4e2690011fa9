"""Corpus adapters on synthetic trees (original download layouts, tiny sine WAVs)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from rich.console import Console

from serkit.corpora import (CORPORA, LabelOptions, get_adapter, load_corpora, load_corpus)
from serkit.corpora.manifest import REQUIRED_COLUMNS
from serkit.corpora.scan import find_duplicates, render_summary, summarize

SR = 16000


def wav(path: Path, freq: float = 220.0, seconds: float = 0.05, fmt: str | None = None) -> Path:
    """Write a short sine (frequency makes the content unique)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(SR * seconds)) / SR
    sf.write(str(path), (0.1 * np.sin(2 * np.pi * freq * t)).astype("float32"), SR, format=fmt)
    return path


def junk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not audio at all" * 10)
    return path


def kinds(result) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in result.problems:
        out.setdefault(p.kind, []).append(Path(p.path).name)
    return out


def row(result, key: str) -> pd.Series:
    m = result.manifest
    return m.loc[m["key"] == key].iloc[0]


# ---------------------------------------------------------------------------------------- RAVDESS
@pytest.fixture
def ravdess_tree(tmp_path: Path) -> Path:
    root = tmp_path / "Audio_Speech_Actors_01-24"
    wav(root / "Actor_01" / "03-01-05-02-01-01-01.wav", 200)
    wav(root / "Actor_02" / "03-01-01-01-02-02-02.wav", 300)
    wav(root / "Actor_02" / "03-01-02-02-01-01-02.wav", 400)
    wav(root / "Actor_02" / "03-01-06-01-01-01-02.WAV", 450)  # upper-case extension
    dup = wav(root / "Actor_07" / "03-01-03-01-02-01-07.wav", 500)
    shutil.copy(dup, root / "Actor_07" / "03-01-03-01-02-02-07.wav")  # the known quirk
    wav(root / "Actor_01" / "03-02-05-01-01-01-01.wav", 600)  # song: excluded
    wav(root / "Actor_01" / "notes_take2.wav", 700)  # bad name
    junk(root / "Actor_01" / "03-01-04-01-01-01-01.wav")  # not audio
    junk(root / "Actor_01" / "._03-01-04-01-01-02-01.wav")  # macOS residue: ignored
    (root / "Actor_01" / "README.txt").write_text("not audio")
    return root


def test_ravdess(ravdess_tree: Path):
    res = load_corpus("ravdess", ravdess_tree)
    m = res.manifest
    assert list(m.columns[: len(REQUIRED_COLUMNS)]) != []
    assert set(REQUIRED_COLUMNS) <= set(m.columns)
    assert len(m) == 6
    r = row(res, "ravdess/03-01-05-02-01-01-01")
    assert (r.speaker, r.gender, r.emotion, r.native, r.intensity) == (
        "ravdess_01", "male", "angry", "angry", "strong")
    assert r.statement == 1 and r.repetition == 1 and r.text.startswith("Kids")
    assert r.duration == pytest.approx(0.05, abs=1e-3)
    r = row(res, "ravdess/03-01-01-01-02-02-02")
    assert (r.gender, r.emotion, r.statement, r.repetition) == ("female", "neutral", 2, 2)
    assert row(res, "ravdess/03-01-06-01-01-01-02").emotion == "fear"
    k = kinds(res)
    assert k["unparseable"] == ["notes_take2.wav"]
    assert k["unreadable"] == ["03-01-04-01-01-01-01.wav"]
    assert k["excluded"] == ["03-02-05-01-01-01-01.wav"]
    assert sorted(k["duplicate"]) == ["03-01-03-01-02-01-07.wav", "03-01-03-01-02-02-07.wav"]
    assert not any("._" in p.path for p in res.problems)


def test_label_sets_and_options(ravdess_tree: Path):
    ek = load_corpus("ravdess", ravdess_tree, label_set="ekman7")
    assert "calm" not in set(ek.manifest["label"]) and len(ek.manifest) == 5
    assert ek.excluded == {"label set ekman7 drops calm": 1}
    merged = load_corpus("ravdess", ravdess_tree, label_set="ekman7",
                         label_options={"calm": "neutral"})
    assert len(merged.manifest) == 6
    assert (merged.manifest["label"] == "neutral").sum() == 2
    same = load_corpus("ravdess", ravdess_tree, label_set="ekman7",
                       label_options=LabelOptions(calm="neutral"))
    assert same.manifest["label"].tolist() == merged.manifest["label"].tolist()
    with pytest.raises(ValueError):
        load_corpus("ravdess", ravdess_tree, label_options={"clam": "neutral"})


def test_check_readable_catches_corrupt_body(tmp_path: Path):
    good = wav(tmp_path / "Actor_01" / "03-01-05-01-01-01-01.flac", 200, seconds=1.0)
    bad = tmp_path / "Actor_01" / "03-01-05-01-01-02-01.flac"
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # truncated body, intact header
    fast = load_corpus("ravdess", tmp_path, check_duplicates=False)
    full = load_corpus("ravdess", tmp_path, check_readable=True, check_duplicates=False)
    assert len(fast.manifest) == 2 and not fast.problems
    assert full.manifest["key"].tolist() == ["ravdess/03-01-05-01-01-01-01"]
    assert kinds(full) == {"unreadable": [bad.name]}
    assert row(full, "ravdess/03-01-05-01-01-01-01").duration == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------- CREMA-D
@pytest.fixture
def cremad_tree(tmp_path: Path) -> Path:
    root = tmp_path / "CREMA-D"
    wav(root / "AudioWAV" / "1001_DFA_ANG_XX.wav", 200)
    wav(root / "AudioWAV" / "1002_IEO_HAP_HI.wav", 300)
    wav(root / "AudioWAV" / "1002_IEO_SAD_LO.wav", 350)
    wav(root / "AudioWAV" / "1002_IEO_BOR_LO.wav", 400)  # unknown emotion
    (root / "VideoDemographics.csv").write_text(
        '"ActorID","Age","Sex","Race","Ethnicity"\n'
        '1001,51,"Male","Caucasian","Not Hispanic"\n'
        '1002,21,"Female","Asian","Not Hispanic"\n')
    return root


def test_cremad_with_demographics(cremad_tree: Path):
    for root in (cremad_tree, cremad_tree / "AudioWAV"):  # csv in root or a parent
        res = load_corpus("cremad", root)
        assert len(res.manifest) == 3
        r = row(res, "cremad/1001_DFA_ANG_XX")
        assert (r.speaker, r.gender, r.age, r.race, r.emotion, r.native, r.intensity) == (
            "cremad_1001", "male", 51, "Caucasian", "angry", "ANG", "unspecified")
        assert (r.sentence, r.text) == ("DFA", "Don't forget a jacket")
        r = row(res, "cremad/1002_IEO_HAP_HI")
        assert (r.gender, r.intensity, r.ethnicity) == ("female", "high", "Not Hispanic")
        assert row(res, "cremad/1002_IEO_SAD_LO").intensity == "low"
        assert kinds(res)["unparseable"] == ["1002_IEO_BOR_LO.wav"]


def test_cremad_prefers_wav_over_mp3_copy_and_reports_empty(cremad_tree: Path):
    # a second, lossy copy of one utterance in a folder that sorts first
    wav(cremad_tree / "AudioLossy" / "1001_DFA_ANG_XX.ogg", 250, seconds=0.2)
    sf.write(str(cremad_tree / "AudioWAV" / "1076_MTI_SAD_XX.wav"), np.zeros(0, "float32"), SR)
    res = load_corpus("cremad", cremad_tree)
    assert row(res, "cremad/1001_DFA_ANG_XX").path.endswith(".wav")
    k = kinds(res)
    assert k["duplicate_key"] == ["1001_DFA_ANG_XX.ogg"]
    assert k["empty"] == ["1076_MTI_SAD_XX.wav"]


def test_cremad_without_demographics(cremad_tree: Path):
    (cremad_tree / "VideoDemographics.csv").unlink()
    res = load_corpus("cremad", cremad_tree / "AudioWAV")
    assert set(res.manifest["gender"]) == {"unknown"}
    assert "warning" in kinds(res)


# ------------------------------------------------------------------------------------------- TESS
def test_tess(tmp_path: Path):
    root = tmp_path / "TESS Toronto emotional speech set data"
    wav(root / "OAF_angry" / "OAF_back_angry.wav", 200)
    wav(root / "YAF_pleasant_surprised" / "YAF_back_ps.wav", 300)
    wav(root / "OAF_neutral" / "OA_bite_neutral.wav", 400)
    wav(root / "OAF_Fear" / "OAF_wheat_fear.wav", 500, fmt="AIFF")  # AIFF under a .wav name
    wav(root / "YAF_sad" / "YAF_sad.wav", 600)  # too few parts
    res = load_corpus("tess", root)
    assert len(res.manifest) == 4
    r = row(res, "tess/OA_bite_neutral")
    assert (r.speaker, r.gender, r.age, r.word, r.emotion) == (
        "tess_OAF", "female", 64, "bite", "neutral")
    r = row(res, "tess/YAF_back_ps")
    assert (r.speaker, r.age, r.native, r.emotion) == ("tess_YAF", 26, "ps", "surprise")
    assert row(res, "tess/OAF_wheat_fear").emotion == "fear"
    assert kinds(res) == {"unparseable": ["YAF_sad.wav"]}


# ------------------------------------------------------------------------------------------ SAVEE
def test_savee_both_layouts(tmp_path: Path):
    root = tmp_path / "SAVEE"
    wav(root / "AudioData" / "DC" / "a01.wav", 200)
    wav(root / "AudioData" / "JE" / "sa12.wav", 300)
    wav(root / "AudioData" / "XX" / "n01.wav", 350)  # unknown speaker folder
    wav(root / "flat" / "KL_su02.wav", 400)
    wav(root / "flat" / "JK_n30.wav", 500)
    res = load_corpus("savee", root)
    assert sorted(res.manifest["key"]) == ["savee/DC_a01", "savee/JE_sa12", "savee/JK_n30",
                                           "savee/KL_su02"]
    r = row(res, "savee/JE_sa12")
    assert (r.speaker, r.gender, r.emotion, r.native) == ("savee_JE", "male", "sad", "sa")
    assert row(res, "savee/KL_su02").emotion == "surprise"
    assert row(res, "savee/DC_a01").emotion == "angry"
    assert kinds(res) == {"unparseable": ["n01.wav"]}


def test_savee_same_utterance_twice_is_a_duplicate_key(tmp_path: Path):
    wav(tmp_path / "AudioData" / "DC" / "a01.wav", 200)
    wav(tmp_path / "DC_a01.wav", 300)
    res = load_corpus("savee", tmp_path)
    assert len(res.manifest) == 1 and list(kinds(res)) == ["duplicate_key"]


# ------------------------------------------------------------------------------------------ EmoDB
def test_emodb(tmp_path: Path):
    root = tmp_path / "emodb"
    wav(root / "wav" / "03a01Fa.wav", 200)
    wav(root / "wav" / "08b10Wb.wav", 300)
    wav(root / "wav" / "16a05Lc.wav", 400)
    wav(root / "wav" / "03a01Xa.wav", 500)  # unknown emotion letter
    res = load_corpus("emodb", root)
    r = row(res, "emodb/03a01Fa")
    assert (r.speaker, r.gender, r.emotion, r.native, r.sentence, r.version) == (
        "emodb_03", "male", "happy", "F", "a01", "a")
    r = row(res, "emodb/08b10Wb")
    assert (r.gender, r.emotion, r.sentence) == ("female", "angry", "b10")
    assert row(res, "emodb/16a05Lc").emotion == "boredom"
    assert kinds(res) == {"unparseable": ["03a01Xa.wav"]}
    assert len(load_corpus("emodb", root, label_set="ekman7").manifest) == 2
    assert len(load_corpus("emodb", root, label_set="ekman7",
                           label_options={"boredom": "neutral"}).manifest) == 3


# ---------------------------------------------------------------------------------------- IEMOCAP
def _iemocap_tree(tmp_path: Path) -> Path:
    root = tmp_path / "IEMOCAP_full_release"
    s1 = root / "Session1"
    utts = {  # utterance -> label code
        "Ses01F_impro01_F000": "neu", "Ses01F_impro01_M001": "exc",
        "Ses01F_impro01_F002": "xxx", "Ses01F_impro01_M003": None,
        "Ses01M_script01_1_F000": "ang", "Ses01M_script01_1_M001": "hap",
        "Ses01M_script01_1_M002": "fru",
    }
    lines: dict[str, list[str]] = {}
    for i, (utt, code) in enumerate(utts.items()):
        dialog = utt.rsplit("_", 1)[0]
        wav(s1 / "sentences" / "wav" / dialog / f"{utt}.wav", 200 + 50 * i)
        lines.setdefault(dialog, ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""])
        if code:
            lines[dialog] += [f"[{i}.5000 - {i + 1}.2500]\t{utt}\t{code}\t[2.5000, 3.0000, 3.5000]",
                              f"C-E1:\tNeutral state;\t()", ""]
    for dialog, text in lines.items():
        ev = s1 / "dialog" / "EmoEvaluation"
        ev.mkdir(parents=True, exist_ok=True)
        (ev / f"{dialog}.txt").write_text("\n".join(text))
        cat = ev / "Categorical"
        cat.mkdir(exist_ok=True)
        (cat / f"{dialog}_e1_cat.txt").write_text(f"{dialog}_F000 :Anger; ()\n")
        wav(s1 / "dialog" / "wav" / f"{dialog}.wav", 1000)  # dialog-level audio: ignored
    return tmp_path


def test_iemocap(tmp_path: Path):
    parent = _iemocap_tree(tmp_path)
    res = load_corpus("iemocap", parent)  # root above IEMOCAP_full_release is fine
    m = res.manifest
    assert len(m) == 5
    assert res.excluded == {"no agreement (xxx)": 1}
    assert kinds(res) == {"no_label": ["Ses01F_impro01_M003.wav"]}
    r = row(res, "iemocap/Ses01F_impro01_M001")
    assert (r.speaker, r.gender, r.emotion, r.native, r.session, r.dialog, r.improvised) == (
        "iemocap_Ses01M", "male", "excited", "exc", 1, "Ses01F_impro01", True)
    assert (r.start, r.end, r.valence, r.activation, r.dominance) == (1.5, 2.25, 2.5, 3.0, 3.5)
    r = row(res, "iemocap/Ses01M_script01_1_F000")
    assert (r.speaker, r.gender, r.emotion, r.improvised, r.dialog) == (
        "iemocap_Ses01F", "female", "angry", False, "Ses01M_script01_1")
    assert set(m["speaker"]) == {"iemocap_Ses01F", "iemocap_Ses01M"}

    four = load_corpus("iemocap", parent / "IEMOCAP_full_release", label_set="four")
    labels = dict(zip(four.manifest["key"], four.manifest["label"]))
    assert labels == {"iemocap/Ses01F_impro01_F000": "neutral",
                      "iemocap/Ses01F_impro01_M001": "happy",
                      "iemocap/Ses01M_script01_1_F000": "angry",
                      "iemocap/Ses01M_script01_1_M001": "happy"}
    assert four.excluded["label set four drops frustrated"] == 1
    no_exc = load_corpus("iemocap", parent, label_set="four", label_options={"excited": "drop"})
    assert "iemocap/Ses01F_impro01_M001" not in set(no_exc.manifest["key"])


# ---------------------------------------------------------------------------------------- generic
def test_generic_csv(tmp_path: Path):
    root = tmp_path / "my corpus"
    wav(root / "a" / "x1.wav", 200)
    wav(root / "b" / "x1.wav", 300)  # same stem, other folder
    outside = wav(tmp_path / "elsewhere" / "y.flac", 400)
    wav(root / "a" / "x2.wav", 500)
    pd.DataFrame({
        "path": ["a/x1.wav", "b/x1.wav", str(outside), "a/x2.wav", "a/missing.wav"],
        "label": ["Anger", "joy", "sadness", "contempt", "neutral"],
        "speaker": ["s1", "s2", "s1", "s2", "s1"],
        "gender": ["F", "male", "", "m", "f"],
        "session": ["1", "2", "3", "4", "5"],
    }).to_csv(root / "labels.csv", index=False)
    res = load_corpus("generic", root / "labels.csv")
    m = res.manifest
    # the corpus is named after the CSV file; a file outside the CSV's folder is named by its
    # path relative to the common parent of all listed files
    assert sorted(m["key"]) == ["labels/a/x1", "labels/a/x2", "labels/b/x1", "labels/elsewhere/y"]
    r = row(res, "labels/a/x1")
    assert (r.corpus, r.speaker, r.gender, r.emotion, r.native, r.label, r.session) == (
        "labels", "labels_s1", "female", "angry", "Anger", "Anger", "1")
    assert row(res, "labels/b/x1").emotion == "happy"
    assert row(res, "labels/elsewhere/y").gender == "unknown"
    c = row(res, "labels/a/x2")  # not an emotion name: kept as written, emotion empty
    assert (c.native, c.label) == ("contempt", "contempt") and pd.isna(c.emotion)
    assert kinds(res) == {"missing": ["missing.wav"]}
    named = load_corpus("generic", root / "labels.csv", corpus="mine")
    assert set(named.manifest["corpus"]) == {"mine"}
    ek = load_corpus("generic", root / "labels.csv", label_set="ekman7")
    assert sorted(ek.manifest["label"]) == ["angry", "happy", "sad"]
    assert ek.excluded == {"label set ekman7: 'contempt' is not an emotion name": 1}


def test_generic_folders(tmp_path: Path):
    flat = tmp_path / "flat"
    wav(flat / "angry" / "001.wav", 200)
    wav(flat / "happiness" / "001.wav", 300)
    wav(flat / "loud" / "001.wav", 400)
    wav(flat / "stray.wav", 500)
    with pytest.warns(UserWarning, match="speaker_regex"):
        res = load_corpus("generic", flat)
    assert sorted(res.manifest["key"]) == ["flat/angry/001", "flat/happiness/001", "flat/loud/001"]
    assert sorted(res.manifest["label"]) == ["angry", "happiness", "loud"]
    assert set(res.manifest["speaker"]) == {"flat_flat"}
    k = kinds(res)
    assert k["unparseable"] == ["stray.wav"] and "warning" in k

    nested = tmp_path / "nested"
    wav(nested / "anna" / "sad" / "take1.wav", 600)
    wav(nested / "bob" / "surprised" / "take1.wav", 700)
    res = load_corpus("generic", nested, corpus="lab")
    assert dict(zip(res.manifest["key"], res.manifest["speaker"])) == {
        "lab/anna/sad/take1": "lab_anna", "lab/bob/surprised/take1": "lab_bob"}
    assert "warning" not in kinds(res)

    rx = tmp_path / "rx"
    wav(rx / "fear" / "spk07_a.wav", 800)
    res = load_corpus("generic", rx, speaker_regex=r"spk(?P<speaker>\d+)_")
    assert res.manifest["speaker"].tolist() == ["rx_07"]


def _three_folders(tmp_path: Path, n: int = 3) -> list[Path]:
    """Files that share names across folders (as in many user corpora)."""
    return [wav(tmp_path / "audio" / spk / "take1.wav", 200 + 50 * i)
            for i, spk in enumerate(["spk_a", "spk_b", "spk_c"][:n])]


def test_csv_absolute_paths_with_repeated_names_keep_every_row(tmp_path: Path):
    files = _three_folders(tmp_path)
    csv = tmp_path / "lists" / "valence study.csv"  # files are outside the CSV's folder
    csv.parent.mkdir()
    pd.DataFrame({"path": [str(f) for f in files], "label": ["positive", "negative", "positive"],
                  "speaker": ["a", "b", "c"]}).to_csv(csv, index=False)
    res = load_corpus("csv", csv)
    m = res.manifest
    assert sorted(m["key"]) == ["valence_study/spk_a/take1", "valence_study/spk_b/take1",
                                "valence_study/spk_c/take1"]
    assert set(m["corpus"]) == {"valence_study"} and not res.problems
    assert sorted(m["label"]) == ["negative", "positive", "positive"]


def test_csv_key_column_base_dir_and_duplicate_rows(tmp_path: Path):
    files = _three_folders(tmp_path)
    csv = tmp_path / "meta.csv"
    pd.DataFrame({
        "path": ["spk_a/take1.wav", "spk_b/take1.wav", "spk_c/take1.wav", str(files[0]), ""],
        "label": [" happy ", "sad", "sad", "angry", "sad"],
        "speaker": ["a", "b", "c", "a", "a"],
        "utt": ["u1", "u2", "u2", "u4", "u5"],
    }).to_csv(csv, index=False)
    res = load_corpus("csv", csv, key_column="utt", base_dir=tmp_path / "audio")
    m = res.manifest
    assert sorted(m["key"]) == ["meta/u1", "meta/u2"]
    assert row(res, "meta/u1").label == "happy"  # whitespace stripped
    k = kinds(res)
    # row 3 has a key already taken, row 4 names the file of row 1, row 5 has no path
    assert sorted(k["duplicate_key"]) == ["take1.wav", "take1.wav"]
    assert k["no_path"] == ["meta.csv:6"]
    detail = next(p.detail for p in res.problems if "same file" in p.detail)
    assert "line 5" in detail and "line 2" in detail and "conflict" in detail
    rows_in = 5
    assert len(m) + len(res.problems) == rows_in  # nothing left out without a Problem


def test_relative_keys_never_collide(tmp_path: Path):
    from serkit.corpora.generic import relative_keys

    base = tmp_path / "c" / "sub"
    paths = [base / "a" / "x.wav", tmp_path / "c" / "a" / "x.wav", base / "a" / "x.flac"]
    keys = relative_keys(paths, base)
    assert len(set(keys.values())) == 3
    assert keys[paths[0]] == "sub/a/x.wav" and keys[paths[2]] == "sub/a/x.flac"
    assert relative_keys(paths[:2], base) == {paths[0]: "sub/a/x", paths[1]: "a/x"}


def test_own_labels_under_native_and_mapping_when_asked(tmp_path: Path):
    root = tmp_path / "stress"
    wav(root / "spk1" / "high" / "a.wav", 200)
    wav(root / "spk2" / "Low stress" / "a.wav", 300)
    wav(root / "spk2" / "Happy" / "b.wav", 350)
    wav(root / "spk1" / "calm" / "c.wav", 400)
    res = load_corpus("folder", root)
    m = res.manifest
    assert sorted(m["label"]) == ["Happy", "Low stress", "calm", "high"]
    assert sorted(m["emotion"].dropna()) == ["calm", "happy"]
    assert not res.excluded
    four = load_corpus("folder", root, label_set="four", label_options={"calm": "neutral"})
    assert sorted(four.manifest["label"]) == ["happy", "neutral"]
    assert four.excluded == {"label set four: 'high' is not an emotion name": 1,
                             "label set four: 'Low stress' is not an emotion name": 1}
    text = _render(summarize(four))
    assert "'Low stress' is not an emotion name" in text


def _render(summary: dict) -> str:
    console = Console(record=True, width=200)
    console.print(render_summary(summary))
    return console.export_text()


def test_corpus_name_option_and_adapter_options(tmp_path: Path):
    root = tmp_path / "My Folder"
    wav(root / "s1" / "angry" / "a.wav", 200)
    assert set(load_corpus("folder", root).manifest["corpus"]) == {"my_folder"}
    with pytest.raises(ValueError, match="ravdess.*speaker_regex.*no options"):
        load_corpus("ravdess", root, speaker_regex="x")
    with pytest.raises(ValueError, match="cremad.*key_column.*demographics"):
        load_corpus("cremad", root, key_column="id")
    with pytest.raises(ValueError, match="CSV corpus only"):
        load_corpus("folder", root, key_column="id")
    with pytest.raises(ValueError, match="no '/'"):
        load_corpus("folder", root, corpus="a/b")


def test_zero_byte_file_is_reported_as_empty(tmp_path: Path):
    wav(tmp_path / "Actor_01" / "03-01-05-01-01-01-01.wav", 200)
    (tmp_path / "Actor_01" / "03-01-05-01-01-02-01.wav").write_bytes(b"")
    junk(tmp_path / "Actor_01" / "03-01-05-01-02-01-01.wav")
    res = load_corpus("ravdess", tmp_path)
    probs = {Path(p.path).name: (p.kind, p.detail) for p in res.problems}
    assert probs["03-01-05-01-01-02-01.wav"] == ("empty", "file is empty (0 bytes)")
    kind, detail = probs["03-01-05-01-02-01-01.wav"]
    assert kind == "unreadable" and "Format not recognised" in detail


# ------------------------------------------------------------------------------ merge and registry
def test_registry_and_merge(tmp_path: Path, ravdess_tree: Path):
    assert {"ravdess", "cremad", "tess", "savee", "emodb", "iemocap", "generic"} <= set(CORPORA)
    with pytest.raises(ValueError, match="unknown corpus"):
        get_adapter("nope")
    wav(tmp_path / "savee" / "DC_a01.wav", 900)
    res = load_corpora([("ravdess", ravdess_tree), ("savee", tmp_path / "savee")],
                       label_set="ekman7")
    m = res.manifest
    assert len(m) == 6 and m["key"].is_unique
    assert set(m["corpus"]) == {"ravdess", "savee"}
    assert {p.kind for p in res.problems} >= {"unparseable", "unreadable", "duplicate"}
    assert res.excluded == {"ravdess: label set ekman7 drops calm": 1}
    with pytest.raises(ValueError, match="unique"):
        load_corpora([("savee", tmp_path / "savee"), ("savee", tmp_path / "savee")])


def test_missing_root(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        load_corpus("emodb", tmp_path / "absent")


def test_empty_corpus_gives_valid_empty_manifest(tmp_path: Path):
    res = load_corpus("emodb", tmp_path)
    assert len(res.manifest) == 0 and set(REQUIRED_COLUMNS) <= set(res.manifest.columns)
    assert summarize(res)["utterances"] == 0


# ------------------------------------------------------------------------------ duplicates, summary
def test_find_duplicates_bytes_and_samples(tmp_path: Path):
    a = wav(tmp_path / "a.wav", 200)
    b = tmp_path / "b.wav"
    shutil.copy(a, b)
    c = tmp_path / "c.flac"  # same samples, other container
    data, sr = sf.read(str(a), dtype="int16")
    sf.write(str(c), data, sr, subtype="PCM_16")
    wav(tmp_path / "d.wav", 300)  # same length, other content
    junk(tmp_path / "e.wav")
    assert find_duplicates(sorted(tmp_path.iterdir()), mode="bytes") == [[a, b]]
    assert find_duplicates(sorted(tmp_path.iterdir()), mode="samples") == [[a, b, c]]
    assert find_duplicates(sorted(tmp_path.iterdir())) == [[a, b, c]]
    with pytest.raises(ValueError):
        find_duplicates([a], mode="md5")  # type: ignore[arg-type]


def test_summary(ravdess_tree: Path):
    res = load_corpus("ravdess", ravdess_tree)
    s = summarize(res)
    for key in ("corpus", "utterances", "speakers", "labels", "genders", "duration_s",
                "problems", "per_speaker"):
        assert key in s
    assert s["corpus"] == "ravdess" and s["utterances"] == 6 and s["speakers"] == 3
    assert s["labels"]["calm"] == 1 and sum(s["per_speaker"].values()) == 6
    assert s["speaker_genders"] == {"female": 1, "male": 2}
    assert s["duration_s"] == pytest.approx(0.3, abs=1e-3)
    assert {p["kind"] for p in s["problems"]} == {"unparseable", "unreadable", "excluded",
                                                  "duplicate"}
    console = Console(record=True, width=120)
    console.print(render_summary(s))
    text = console.export_text()
    assert "ravdess" in text and "duplicate" in text and "calm" in text
