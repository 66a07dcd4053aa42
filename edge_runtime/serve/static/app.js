// fmnist-edge's page: no framework, no build step, nothing from the network but this server.
// Results are built with textContent, never innerHTML: file names come from users.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function percent(score) {
  return (100 * score).toFixed(1) + "%";
}

// The answer as a person reads it: below the model's threshold it is "not sure".
function answer(result) {
  return result.not_sure ? `not sure (${result.label}?)` : result.label;
}

function bars(list, topK) {
  list.replaceChildren(...topK.map((entry) => {
    const item = el("li");
    const bar = el("div", undefined, "bar");
    bar.style.width = percent(entry.score);
    const track = el("div");
    track.append(bar);
    item.append(el("span", entry.label), track, el("span", percent(entry.score)));
    return item;
  }));
}

async function getJSON(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  return { status: response.status, body: await response.json().catch(() => ({})) };
}

function showInfo(info) {
  const model = info.model;
  const accuracy = model.test_accuracy ? `, ${percent(model.test_accuracy)} on the test set` : "";
  $("model").textContent = `${model.path.split("/").pop()} (${model.quantization}${accuracy}) on ${info.runtime} ${info.runtime_version}`;
  $("footer").textContent = `fmnist-edge ${info.version} · up ${Math.round(info.uptime_s)} s · uploads up to ${info.max_upload_mb} MB`;
  const photos = model.photos && model.photos.validation;
  $("photo-figures").textContent = photos
    ? `This model got ${percent(photos.strict)} of the real validation photos right ` +
      `(${percent(photos.family)} of the right kind).`
    : "";
}

async function pollLatest() {
  const { status, body } = await getJSON("/api/latest").catch(() => ({ status: 0, body: {} }));
  if (status === 200) {
    $("camera-state").textContent = body.camera.state;
    $("camera-error").textContent = body.camera.error
      ? `${body.camera.error}${body.camera.retry_in_s !== null ? `; retrying in ${body.camera.retry_in_s.toFixed(1)} s` : ""}`
      : "";
    if (body.label !== null) {
      $("live-label").textContent = answer(body);
      $("live-score").textContent = percent(body.score);
      $("live-fps").textContent = body.fps.toFixed(0);
      bars($("live-top"), body.top_k);
    }
  }
  setTimeout(pollLatest, 250);
}

function showResults(results) {
  $("results").replaceChildren(...results.map((result) => {
    const row = el("div", undefined, "result");
    if (result.error) {
      row.append(el("span", result.name), el("span", result.error, "error"));
      return row;
    }
    const seen = el("img", undefined, "seen");
    seen.src = result.preprocessed;
    seen.alt = `What the model saw of ${result.name}`;
    const text = el("div");
    const list = el("ol", undefined, "bars");
    bars(list, result.top_k);
    text.append(el("div", result.name), el("div", `${answer(result)} ${percent(result.score)}`, "label"), list);
    row.append(seen, text);
    return row;
  }));
}

// --- captures: label what the model was unsure of ---------------------------------------------

let labels = [];

function captureCard(capture) {
  const card = el("div", undefined, "capture");
  card.dataset.id = capture.id;
  const frame = el("img", undefined, "frame");
  frame.src = capture.frame;
  frame.alt = `Captured from ${capture.source}`;
  const seen = el("img", undefined, "seen");
  seen.src = capture.seen;
  seen.alt = "What the model saw";
  const text = el("div");
  const top = capture.top_k.map((t) => `${t.label} ${percent(t.score)}`).join(" · ");
  const when = new Date(capture.time * 1000).toLocaleString();
  text.append(el("div", `${when}, ${capture.source.split("/").pop()}`), el("div", top, "top"));
  const buttons = el("div", undefined, "labels");
  for (const label of labels) {
    const button = el("button", label);
    button.type = "button";
    button.addEventListener("click", () => labelCapture(capture.id, label));
    buttons.append(button);
  }
  const none = el("button", "none of these", "none");
  none.type = "button";
  none.addEventListener("click", () => labelCapture(capture.id, "none"));
  const remove = el("button", "delete", "delete");
  remove.type = "button";
  remove.addEventListener("click", () => deleteCapture(capture.id));
  buttons.append(none, remove);
  text.append(buttons);
  card.append(frame, seen, text);
  return card;
}

async function refreshCaptures() {
  const { status, body } = await getJSON("/api/captures?labelled=0&limit=12").catch(() => ({ status: 0, body: {} }));
  if (status === 200) {
    $("capture-state").textContent = `${body.unlabelled} to label, ${body.labelled} labelled` +
      (body.state === "on" ? "." : `; ${body.error}.`);
    const shown = [...$("captures").children].map((c) => c.dataset.id).join();
    if (shown !== body.captures.map((c) => c.id).join()) {
      $("captures").replaceChildren(...body.captures.map(captureCard));
    }
  }
}

async function changeCapture(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  $("capture-error").textContent = response.ok ? "" : answer.error;
  refreshCaptures();
}

function labelCapture(id, label) {
  return changeCapture("POST", `/api/captures/${encodeURIComponent(id)}/label`, { label });
}

function deleteCapture(id) {
  return changeCapture("DELETE", `/api/captures/${encodeURIComponent(id)}`);
}

function pollCaptures() {
  refreshCaptures().finally(() => setTimeout(pollCaptures, 2000));
}

async function classify(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const file of files) form.append("file", file, file.name);
  $("upload-error").textContent = "Classifying…";
  const response = await fetch("/api/classify?top_k=3&preprocessed=1", {
    method: "POST", body: form, credentials: "same-origin",
  });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  $("upload-error").textContent = response.ok ? "" : body.error;
  showResults(body.results || []);
  if (!$("captured").hidden) refreshCaptures();
}

function setUpUpload() {
  const drop = $("drop");
  $("files").addEventListener("change", (event) => classify([...event.target.files]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    classify([...event.dataTransfer.files]);
  });
}

async function start() {
  const { status, body } = await getJSON("/api/info");
  if (status === 401) {
    $("login").hidden = false;
    $("model").textContent = "Locked";
    return;
  }
  $("login").hidden = true;
  $("main").hidden = false;
  showInfo(body);
  if (body.captures) {
    labels = body.model.labels;
    $("captured").hidden = false;
    pollCaptures();
  }
  if (body.source) {
    $("live").hidden = false;
    $("stream").src = "/api/stream";
    pollLatest();
  }
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  // The token goes once as a bearer header; the server answers with an HttpOnly cookie that
  // the stream <img> and every later request carry.
  const response = await fetch("/api/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { Authorization: `Bearer ${$("token").value}` },
  });
  if (response.ok) {
    $("login-error").textContent = "";
    start();
  } else {
    $("login-error").textContent = "That token is not this server's.";
  }
});

setUpUpload();
start();
