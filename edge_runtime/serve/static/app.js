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
}

async function pollLatest() {
  const { status, body } = await getJSON("/api/latest").catch(() => ({ status: 0, body: {} }));
  if (status === 200) {
    $("camera-state").textContent = body.camera.state;
    $("camera-error").textContent = body.camera.error
      ? `${body.camera.error}${body.camera.retry_in_s !== null ? `; retrying in ${body.camera.retry_in_s.toFixed(1)} s` : ""}`
      : "";
    if (body.label !== null) {
      $("live-label").textContent = body.label;
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
    text.append(el("div", result.name), el("div", `${result.label} ${percent(result.score)}`, "label"), list);
    row.append(seen, text);
    return row;
  }));
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
