// serkit serve: the page. Plain JavaScript, no libraries, nothing loaded from elsewhere.
"use strict";
(function () {
  const conf = JSON.parse(document.getElementById("config").textContent);
  const $ = (id) => document.getElementById(id);
  const state = { result: null, audio: null, name: null, url: null, stopAt: null, timeline: false };

  $("classes").textContent = conf.classes.join(", ");
  $("limits").textContent = `up to ${fmtBytes(conf.max_upload_bytes)} and ${fmtTime(conf.max_audio_s)} ` +
    "of audio: WAV, FLAC, OGG, MP3, AIFF (other formats your browser plays are converted)";
  if (conf.token_required) $("token-box").hidden = false;
  $("token").value = sessionStorage.getItem("serkit-token") || "";
  $("token").addEventListener("change", () => sessionStorage.setItem("serkit-token", $("token").value));

  function fmtBytes(n) { return n >= 1e6 ? `${Math.round(n / 1e6)} MB` : `${Math.round(n / 1e3)} kB`; }
  function fmtTime(s) {   // 0:07, 1:05, 10:00
    if (!isFinite(s)) return "";
    const m = Math.floor(s / 60), r = Math.floor(s - 60 * m);
    return `${m}:${r < 10 ? "0" : ""}${r}`;
  }
  function fmtLength(s) { return s < 60 ? `${s.toFixed(1)} s` : fmtTime(s); }
  function color(label) { return conf.colors[label] || "#6f6f6f"; }

  // ---------------------------------------------------------------- messages in plain words
  const PLAIN = {
    unsupported_media_type: "This file is not audio the server can read. Try WAV, FLAC, OGG or MP3.",
    undecodable: "The audio file seems damaged or cut off, so it could not be decoded.",
    empty: "The file is empty: there is no audio in it.",
    not_finite: "The audio contains invalid samples (NaN or infinity), so it cannot be analysed.",
    bad_audio: "The audio cannot be used (for example, its sample rate is unusual).",
    too_large: `The file is too big: the limit is ${fmtBytes(conf.max_upload_bytes)}.`,
    too_long: `The recording is too long: the limit is ${fmtTime(conf.max_audio_s)}.`,
    busy: "The server is busy right now. Please try again in a few seconds.",
    timeout: "The server took too long on this recording. Please try again later.",
    upload_timeout: "The upload took too long and was stopped.",
    unauthorized: "This server needs an access token: enter it above and try again.",
    not_available: "Subtitles are not available on this server.",
    internal: "Something went wrong on the server. The server log has the details.",
  };
  function showError(code, message) {
    const box = $("error");
    box.replaceChildren();
    box.append(PLAIN[code] || "The request failed.");
    if (message) {
      const detail = document.createElement("small");
      detail.textContent = message;
      box.append(detail);
    }
    box.hidden = false;
    if (code === "unauthorized") $("token-box").hidden = false;
  }
  function clearError() { $("error").hidden = true; }
  function status(text) { $("status").textContent = text || ""; }

  // ---------------------------------------------------------------- talking to the server
  async function post(path, blob, name) {
    const form = new FormData();
    form.append("file", blob, name || "audio");
    const headers = {};
    const token = $("token").value.trim();
    if (token) headers.Authorization = `Bearer ${token}`;
    let resp;
    try {
      resp = await fetch(path, { method: "POST", body: form, headers });
    } catch (e) {
      throw { code: "network", message: "Could not reach the server. Is it still running?" };
    }
    if (!resp.ok) {
      let err = { code: "error", message: `HTTP ${resp.status}` };
      try { err = (await resp.json()).error || err; } catch (e) { /* not JSON */ }
      err.status = resp.status;
      throw err;
    }
    return resp;
  }

  // ---------------------------------------------------------------- WAV in the browser
  function encodeWav(samples, sr) {
    const buf = new ArrayBuffer(44 + samples.length * 2), v = new DataView(buf);
    const w = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
    w(0, "RIFF"); v.setUint32(4, 36 + samples.length * 2, true); w(8, "WAVE"); w(12, "fmt ");
    v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
    v.setUint32(24, sr, true); v.setUint32(28, sr * 2, true); v.setUint16(32, 2, true);
    v.setUint16(34, 16, true); w(36, "data"); v.setUint32(40, samples.length * 2, true);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      v.setInt16(44 + 2 * i, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return new Blob([buf], { type: "audio/wav" });
  }
  // anything the browser can decode (a webm/ogg recording, m4a...) -> 16 kHz mono 16-bit WAV
  async function toWav(blob) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    const ctx = new Ctx();
    let decoded;
    try { decoded = await ctx.decodeAudioData(await blob.arrayBuffer()); } finally { ctx.close(); }
    const sr = 16000, n = Math.max(1, Math.ceil(decoded.duration * sr));
    const off = new OfflineAudioContext(1, n, sr);
    const src = off.createBufferSource();
    src.buffer = decoded; src.connect(off.destination); src.start();
    return encodeWav((await off.startRendering()).getChannelData(0), sr);
  }

  function durationOf(url) {
    return new Promise((resolve) => {
      const a = new Audio();
      const done = (d) => { a.src = ""; resolve(d); };
      a.preload = "metadata";
      a.onloadedmetadata = () => done(isFinite(a.duration) ? a.duration : null);
      a.onerror = () => done(null);
      setTimeout(() => done(null), 3000);
      a.src = url;
    });
  }

  // ---------------------------------------------------------------- analyse
  async function analyse(blob, name) {
    clearError();
    $("result").hidden = true;
    if (blob.size === 0) return showError("empty");
    if (blob.size > conf.max_upload_bytes) return showError("too_large");
    if (state.url) URL.revokeObjectURL(state.url);
    state.audio = blob; state.name = name; state.url = URL.createObjectURL(blob);
    const seconds = await durationOf(state.url);
    state.timeline = seconds === null || seconds > conf.clip_max_s;
    const path = `${conf.api}/predict${state.timeline ? "?timeline=true" : ""}`;
    status(state.timeline ? "Analysing the recording (timeline)…" : "Analysing…");
    setBusy(true);
    try {
      let resp;
      try {
        resp = await post(path, blob, name);
      } catch (err) {
        if (err.code !== "unsupported_media_type") throw err;
        status("Converting to WAV in the browser…");       // e.g. webm, m4a: decode here, send WAV
        let wav;
        try { wav = await toWav(blob); } catch (e) { throw err; }
        state.audio = wav;
        resp = await post(path, wav, (name || "audio").replace(/\.[^.]*$/, "") + ".wav");
      }
      show(await resp.json());
      status("");
    } catch (err) {
      status("");
      showError(err.code, err.message);
    } finally {
      setBusy(false);
    }
  }

  function setBusy(on) {
    for (const id of ["file", "record", "dl-srt"]) $(id).disabled = on && id !== "record";
  }

  // ---------------------------------------------------------------- show a result
  function show(r) {
    state.result = r;
    $("result").hidden = false;
    const label = $("label");
    label.textContent = r.label || "no speech detected";
    label.style.color = r.label ? color(r.label) : "#6b6b70";
    $("confidence").textContent = r.confidence != null ? `${Math.round(100 * r.confidence)} % sure` : "";
    $("duration").textContent = r.duration != null ? `${fmtLength(r.duration)} of audio` : "";
    $("note").textContent = r.note || "";
    const bars = $("bars");
    bars.replaceChildren();
    const scores = r.scores || {};
    for (const c of conf.classes) {
      const p = scores[c] || 0;
      const row = document.createElement("div");
      row.className = "bar" + (c === r.label ? " top" : "");
      row.dataset.label = c;
      const nameEl = document.createElement("span");
      nameEl.className = "bar-name"; nameEl.textContent = c;
      const track = document.createElement("div");
      track.className = "bar-track";
      const fill = document.createElement("div");
      fill.className = "bar-fill"; fill.style.background = color(c);
      track.append(fill);
      const val = document.createElement("span");
      val.className = "bar-value"; val.textContent = `${(100 * p).toFixed(1)} %`;
      row.append(nameEl, track, val);
      bars.append(row);
      requestAnimationFrame(() => { fill.style.width = `${(100 * p).toFixed(1)}%`; });
    }
    const player = $("player");
    player.src = state.url;
    drawTimeline(r);
  }

  function drawTimeline(r) {
    const box = $("timeline-box"), tl = $("timeline");
    for (const el of tl.querySelectorAll(".segment")) el.remove();
    const segs = r.segments || [];
    box.hidden = segs.length === 0;
    if (!segs.length) return;
    const total = r.duration || segs[segs.length - 1].end || 1;
    $("t1").textContent = fmtTime(total);
    segs.forEach((s, i) => {
      const el = document.createElement("div");
      el.className = "segment" + (s.label ? "" : " silence");
      el.dataset.start = s.start; el.dataset.end = s.end; el.dataset.index = i;
      if (s.label) el.dataset.label = s.label;
      el.style.left = `${(100 * s.start / total).toFixed(3)}%`;
      el.style.width = `${Math.max(0.3, 100 * (s.end - s.start) / total).toFixed(3)}%`;
      if (s.label) el.style.background = color(s.label);
      el.title = `${s.start.toFixed(1)}–${s.end.toFixed(1)} s: ${s.label || "no speech"}` +
        (s.confidence != null ? ` (${Math.round(100 * s.confidence)} %)` : "");
      el.addEventListener("click", () => playSegment(s));
      tl.append(el);
    });
  }

  function playSegment(s) {
    const player = $("player");
    player.currentTime = s.start;
    state.stopAt = s.end;
    player.play().catch(() => {});
  }

  function syncPlayhead() {
    const player = $("player"), r = state.result;
    if (!r || !r.segments) return;
    const t = player.currentTime, total = r.duration || 1;
    $("playhead").style.left = `${Math.min(100, 100 * t / total)}%`;
    for (const el of document.querySelectorAll("#timeline .segment")) {
      const on = t >= +el.dataset.start && t < +el.dataset.end && (!player.paused || t > 0);
      el.classList.toggle("playing", on);
    }
    if (state.stopAt != null && t >= state.stopAt) { player.pause(); state.stopAt = null; }
  }
  $("player").addEventListener("timeupdate", syncPlayhead);
  $("player").addEventListener("seeked", syncPlayhead);
  $("player").addEventListener("play", function tick() {
    syncPlayhead();
    if (!$("player").paused) requestAnimationFrame(tick);
  });
  $("player").addEventListener("pause", () => { if (state.stopAt != null) state.stopAt = null; });

  // ---------------------------------------------------------------- downloads
  function save(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = name;
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 5000);
  }
  function stem() { return (state.name || "recording").replace(/\.[^.]*$/, ""); }
  function csvCell(v) {
    if (v === null || v === undefined) return "";
    const s = typeof v === "boolean" ? (v ? "True" : "False") : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }
  // the columns of `serkit predict --format csv` (one row per segment for a timeline)
  function toCsv(r) {
    const timeline = !!r.segments;
    const cols = (timeline ? ["path", "start", "end"] : ["path"])
      .concat(["label", "confidence", "duration", "speech", "note", "error"], conf.classes.map((c) => `prob_${c}`));
    const rows = timeline ? r.segments.map((s) => Object.assign({ path: r.path }, s,
      { duration: +(s.end - s.start).toFixed(3), speech: s.label != null })) : [r];
    const lines = [cols.join(",")];
    for (const row of rows) {
      lines.push(cols.map((c) => csvCell(c.startsWith("prob_") ? (row.scores || {})[c.slice(5)] : row[c])).join(","));
    }
    return lines.join("\n") + "\n";
  }
  $("dl-json").addEventListener("click", () => state.result &&
    save(new Blob([JSON.stringify(state.result, null, 1) + "\n"], { type: "application/json" }), `${stem()}.json`));
  $("dl-csv").addEventListener("click", () => state.result &&
    save(new Blob([toCsv(state.result)], { type: "text/csv" }), `${stem()}.csv`));
  $("dl-srt").addEventListener("click", async () => {
    if (!state.audio) return;
    clearError();
    status("Transcribing for subtitles… (this takes a while)");
    $("dl-srt").disabled = true;
    try {
      const resp = await post(`${conf.api}/subtitles?format=srt`, state.audio, state.name);
      save(new Blob([await resp.text()], { type: "application/x-subrip" }), `${stem()}.srt`);
      status("");
    } catch (err) {
      status("");
      showError(err.code, err.message);
    } finally {
      $("dl-srt").disabled = false;
    }
  });

  // ---------------------------------------------------------------- inputs
  $("file").addEventListener("change", () => {
    const f = $("file").files[0];
    if (f) analyse(f, f.name);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    const f = e.dataTransfer.files[0];
    if (f) analyse(f, f.name);
  });

  let recorder = null, started = 0, timer = null;
  $("record").addEventListener("click", async () => {
    if (recorder) { recorder.stop(); return; }
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      return showError("record", "This browser cannot record audio (a microphone needs https or localhost).");
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      return showError("record", "The microphone is not available or permission was refused.");
    }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
    recorder.onstop = async () => {
      stream.getTracks().forEach((t) => t.stop());
      clearInterval(timer); $("rec-time").textContent = "";
      $("record").classList.remove("on"); $("record").textContent = "● Record";
      recorder = null;
      const raw = new Blob(chunks, { type: chunks[0] ? chunks[0].type : "audio/webm" });
      let wav;
      try { wav = await toWav(raw); } catch (e) {      // keep what the browser recorded
        return analyse(raw, "recording." + ((raw.type.split("/")[1] || "webm").split(";")[0]));
      }
      analyse(wav, "recording.wav");
    };
    recorder.start();
    started = Date.now();
    $("record").classList.add("on"); $("record").textContent = "■ Stop";
    timer = setInterval(() => { $("rec-time").textContent = fmtTime((Date.now() - started) / 1000); }, 250);
  });
  PLAIN.record = "Recording is not possible here.";
})();
