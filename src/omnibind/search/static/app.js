// omnibind search page: text queries and picture/sound uploads go to POST /search; results become cards.
"use strict";

const $ = (id) => document.getElementById(id);
let lastQuery = null; // {kind: "text", text} or {kind: "file", file}
let health = null;
// How the page names the built-in media; any other modality (a plugin's) is named by itself.
const LABELS = { image: ["picture", "pictures"], audio: ["sound", "sounds"] };
const MIME_FAMILIES = ["image", "audio", "video"];

function label(modality, plural = false) {
  const names = LABELS[modality] || [modality, `${modality} files`];
  return names[plural ? 1 : 0];
}

function capitalised(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// One "Show" radio button per item modality the service reports (after the static "All").
function buildFilter(modalities) {
  const fieldset = $("filter");
  const count = fieldset.querySelector(".count");
  for (const modality of modalities) {
    const option = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "modality";
    input.value = modality;
    option.append(input, ` ${capitalised(label(modality, true))}`);
    fieldset.insertBefore(option, count);
  }
  // The file picker offers the media types when every modality has one; otherwise every file.
  if (modalities.every((m) => MIME_FAMILIES.includes(m))) {
    $("file-input").accept = modalities.map((m) => `${m}/*`).join(",");
  } else {
    $("file-input").removeAttribute("accept");
  }
}

function selectedModality() {
  return document.querySelector('input[name="modality"]:checked').value;
}

function showMessage(text) {
  const box = $("message");
  box.textContent = text || "";
  box.hidden = !text;
}

async function loadHealth() {
  try {
    const response = await fetch("/health");
    health = await response.json();
    buildFilter(health.item_modalities);
    const kinds = Object.entries(health.modalities).map(([m, n]) => `${n} ${label(m, n !== 1)}`);
    $("status").textContent = `${health.items} items (${kinds.join(", ") || "empty"}) · query by ${health.query_modalities.join(", ")}`;
    if (!health.query_modalities.includes("text")) {
      $("query").disabled = true;
      $("query").placeholder = "This index's model cannot embed text; drop a file instead";
    }
  } catch (err) {
    $("status").textContent = "Service unreachable";
  }
}

async function runSearch(query) {
  lastQuery = query;
  const modality = selectedModality();
  const k = Number($("k").value);
  let request;
  if (query.kind === "text") {
    const body = { text: query.text, k };
    if (modality) body.modality = modality;
    request = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  } else {
    const form = new FormData();
    form.append("file", query.file, query.file.name);
    form.append("k", String(k));
    if (modality) form.append("modality", modality);
    request = { method: "POST", body: form };
  }
  document.body.classList.add("busy");
  showMessage("");
  try {
    const response = await fetch("/search", request);
    const payload = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
    if (!response.ok) {
      showMessage(payload.detail || `HTTP ${response.status}`);
      return;
    }
    render(payload);
  } catch (err) {
    showMessage(`Search failed: ${err}`);
  } finally {
    document.body.classList.remove("busy");
  }
}

// The item's metadata, whichever modality recorded it: a size (width × height) or a duration.
function describe(item) {
  if (item.width != null && item.height != null) return `${item.width}×${item.height}`;
  if (item.duration != null) return `${item.duration.toFixed(1)} s`;
  return "";
}

function render(payload) {
  const grid = $("results");
  grid.replaceChildren();
  const q = payload.query;
  const what = q.text != null ? `“${q.text}”` : `${label(q.modality)} ${q.filename || ""}`;
  $("summary").textContent = `${payload.results.length} results for ${what} in ${payload.took_ms.toFixed(0)} ms`;
  const template = $("card-template");
  for (const { score, item } of payload.results) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.dataset.modality = item.modality;
    card.dataset.id = item.id;
    const link = card.querySelector(".thumb");
    link.href = item.media_url;
    const img = card.querySelector("img");
    img.src = item.thumbnail_url;
    img.alt = item.name;
    card.querySelector(".name").textContent = item.name;
    card.querySelector(".name").title = item.path;
    card.querySelector(".badge").textContent = label(item.modality);
    card.querySelector(".extra").textContent = describe(item);
    card.querySelector(".value").textContent = score.toFixed(3);
    card.querySelector(".bar span").style.width = `${Math.max(0, Math.min(1, score)) * 100}%`;
    if (item.modality === "audio") {
      const audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "none";
      audio.src = item.media_url;
      card.querySelector(".meta").before(audio);
    }
    grid.append(card);
  }
}

function useFile(file) {
  if (!file) return;
  const preview = $("upload-preview");
  preview.replaceChildren();
  if (file.type.startsWith("image/")) {
    const img = document.createElement("img");
    img.src = URL.createObjectURL(file);
    img.alt = file.name;
    preview.append(img);
  }
  preview.append(document.createTextNode(file.name));
  $("query").value = "";
  runSearch({ kind: "file", file });
}

function setup() {
  $("text-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("query").value.trim();
    $("upload-preview").replaceChildren();
    if (text) runSearch({ kind: "text", text });
    else showMessage("Type something to search for, or drop a file.");
  });
  $("file-input").addEventListener("change", (event) => useFile(event.target.files[0]));
  const zone = $("dropzone");
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    useFile(event.dataTransfer.files[0]);
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") $("file-input").click();
  });
  $("filter").addEventListener("change", (event) => {
    if (event.target.name === "modality" && lastQuery) runSearch(lastQuery);
  });
  $("k").addEventListener("change", () => lastQuery && runSearch(lastQuery));
  loadHealth();
}

document.addEventListener("DOMContentLoaded", setup);
