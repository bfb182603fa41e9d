// omnibind search page: text queries, uploads and "more like this" become pages of result cards; the query, the
// filter and the open item live in the URL, so a reload, the back button and a shared link show the same thing.
"use strict";

const $ = (id) => document.getElementById(id);
// How the page names the built-in media; any other modality (a plugin's) is named by itself.
const LABELS = { image: ["picture", "pictures"], audio: ["sound", "sounds"] };
const MIME_FAMILIES = ["image", "audio", "video"];
const DEFAULT_K = 12;
const UNREACHABLE = "The search service cannot be reached: check that omnibind serve is running, then try again.";
// Item fields the item view shows in its own words (or not at all); other metadata is listed by key.
const SHOWN = new Set(["id", "path", "name", "modality", "size", "mtime_ns", "sha256", "indexed_at", "thumbnail_url",
  "media_url", "media_type", "width", "height", "duration"]);

const files = new Map(); // upload key (in history.state) -> File, for back and forward in this tab
let health = null;
let current = null; // the query shown: {key, state, echo, results, more, took}
let sequence = 0; // the latest query; answers to older ones are dropped
let uploads = 0;
let viewerIndex = -1; // the open item's place in current.results (-1: opened from the URL alone)
let captionRequest = 0; // the latest caption asked for; answers to older ones are dropped
let lastFocus = null;

function label(modality, plural = false) {
  const names = LABELS[modality] || [modality, `${modality} files`];
  return names[plural ? 1 : 0];
}

function capitalised(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function family(item) {
  return (item.media_type || "").split("/")[0];
}

function oneLine(text) {
  const line = String(text).replace(/\s+/g, " ").trim();
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}

function megabytes(bytes) {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function size(bytes) {
  if (bytes < 1000) return `${bytes} bytes`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  return megabytes(bytes);
}

function maxDepth() {
  return (health && health.max_depth) || 1000;
}

// ------------------------------------------------------------------------------------------------ URL state

function readUrl() {
  const params = new URLSearchParams(location.search);
  const id = (name) => {
    const value = Number(params.get(name));
    return Number.isSafeInteger(value) && value > 0 ? value : null;
  };
  return {
    q: params.get("q") || "", like: id("like"), file: params.get("file") || "",
    modality: params.get("modality") || "", k: id("k") || DEFAULT_K, item: id("item"),
  };
}

function urlOf(state) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  else if (state.like) params.set("like", state.like);
  else if (state.file) params.set("file", state.file);
  if (state.modality) params.set("modality", state.modality);
  if (state.k !== DEFAULT_K) params.set("k", state.k);
  if (state.item) params.set("item", state.item);
  const query = params.toString();
  return query ? `?${query}` : location.pathname;
}

function fileKey() {
  return (history.state && history.state.fileKey) || null;
}

function queryKey(state) {
  return JSON.stringify([state.q, state.like, state.file, state.file ? fileKey() : null, state.modality, state.k]);
}

// A new entry in the history (or the current one replaced), then the page made to show it.
function navigate(changes, { replace = false, upload = null, opened = false } = {}) {
  const state = { ...readUrl(), item: null, ...changes };
  const entry = { fileKey: state.file ? upload || fileKey() : null, opened };
  if (replace) history.replaceState(entry, "", urlOf(state));
  else history.pushState(entry, "", urlOf(state));
  return apply(state);
}

function newQuery(changes) {
  return navigate({ q: "", like: null, file: "", ...changes });
}

async function apply(state) {
  if (!current || current.key !== queryKey(state)) {
    syncControls(state); // a text typed but not searched stays while items open and close
    await runQuery(state);
  }
  if (urlOf(readUrl()) !== urlOf(state)) return; // the page moved on meanwhile
  if (state.item) await openViewer(state.item);
  else hideViewer();
}

function syncControls(state) {
  $("query").value = state.q;
  const radio = document.querySelector(`input[name="modality"][value="${CSS.escape(state.modality)}"]`);
  if (radio) radio.checked = true;
  const k = $("k");
  if (![...k.options].some((option) => Number(option.value) === state.k)) k.add(new Option(String(state.k)));
  k.value = String(state.k);
  if (!state.file) $("upload-preview").replaceChildren();
}

// ------------------------------------------------------------------------------------------------ queries

function showMessage(text) {
  $("message").textContent = text ? oneLine(text) : "";
  $("message").hidden = !text;
}

function failure(state, status, payload) {
  const detail = payload && typeof payload.detail === "string" ? payload.detail : `HTTP ${status}`;
  if (status === 503) return `The service is busy, try again in a moment: ${detail}`;
  if (state.file && [400, 413, 415, 422].includes(status)) return `Upload refused: ${detail}`;
  if (status >= 500) return `The search failed on the service (HTTP ${status}): ${detail}`;
  return `The search failed: ${detail}`;
}

// One page of results of a query (a text, an indexed item's stored vector, or an uploaded file).
async function fetchPage(state, offset, k) {
  let url = "/search";
  let request;
  if (state.like) {
    const params = new URLSearchParams({ k: String(k), offset: String(offset) });
    if (state.modality) params.set("modality", state.modality);
    url = `/items/${state.like}/similar?${params}`;
    request = {};
  } else if (state.q) {
    const body = { text: state.q, k, offset };
    if (state.modality) body.modality = state.modality;
    request = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  } else {
    const file = files.get(fileKey());
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("k", String(k));
    form.append("offset", String(offset));
    if (state.modality) form.append("modality", state.modality);
    request = { method: "POST", body: form };
  }
  let response;
  try {
    response = await fetch(url, request);
  } catch (err) {
    throw new Error(UNREACHABLE);
  }
  const payload = await response.json().catch(() => null);
  if (!response.ok || !payload || !Array.isArray(payload.results)) {
    throw new Error(failure(state, response.status, payload));
  }
  return payload;
}

function clearResults() {
  $("results").replaceChildren();
  $("summary").textContent = "";
  $("more").hidden = true;
  $("depth").textContent = "";
  $("again").hidden = true;
}

async function runQuery(state) {
  const mine = ++sequence;
  current = { key: queryKey(state), state, echo: null, results: [], more: false, took: 0 };
  showMessage("");
  if (!state.q && !state.like && !state.file) {
    clearResults();
    return;
  }
  if (state.file && !files.has(fileKey())) {
    clearResults();
    offerUpload(state.file, false);
    showMessage(`This search was by an uploaded file, ${state.file}, which a link or a reload does not keep: `
      + "choose it again to search by it.");
    return;
  }
  document.body.classList.add("busy");
  $("results").setAttribute("aria-busy", "true");
  try {
    const first = Math.min(state.k, maxDepth());
    const payload = await fetchPage(state, 0, first);
    if (mine !== sequence) return;
    clearResults();
    current.echo = payload.query;
    current.took = payload.took_ms;
    addResults(payload.results, first);
  } catch (err) {
    if (mine !== sequence) return;
    clearResults();
    showMessage(err.message || UNREACHABLE);
  } finally {
    if (mine === sequence) {
      document.body.classList.remove("busy");
      $("results").removeAttribute("aria-busy");
    }
  }
}

async function loadMore() {
  const mine = sequence;
  const offset = current.results.length;
  const k = Math.min(current.state.k, maxDepth() - offset);
  $("more").disabled = true;
  try {
    const payload = await fetchPage(current.state, offset, k);
    if (mine !== sequence) return;
    showMessage("");
    addResults(payload.results, k);
    const next = $("results").querySelectorAll("a.open")[offset];
    if (next) next.focus();
  } catch (err) {
    if (mine === sequence) showMessage(err.message || UNREACHABLE);
  } finally {
    $("more").disabled = false;
  }
}

function addResults(results, asked) {
  const start = current.results.length;
  current.results.push(...results);
  results.forEach((result, i) => $("results").append(card(result, start + i)));
  // Every indexed item of the filter's modalities ranks somewhere, so /health's counts say when all are shown.
  const total = current.state.modality ? health.modalities[current.state.modality] || 0 : health.items;
  current.more = results.length === asked && current.results.length < Math.min(total, maxDepth());
  summarise();
}

function summarise() {
  const { echo, results, state } = current;
  const n = results.length;
  let what;
  if (echo.item != null) what = `like ${echo.filename}`;
  else if (echo.text != null) what = `for “${echo.text}”`;
  else what = `for ${label(echo.modality)} ${echo.filename || "(no name)"} (an uploaded file)`;
  const among = echo.filter ? ` among ${label(echo.filter, true)}` : "";
  $("summary").textContent = `${n} result${n === 1 ? "" : "s"} ${what}${among} in ${current.took.toFixed(0)} ms`;
  $("more").hidden = !current.more;
  if (current.more) $("depth").textContent = `Showing ${n}; a query pages through at most ${maxDepth()} results.`;
  else if (n >= maxDepth()) $("depth").textContent = `Showing the first ${n} results, the most a query pages through.`;
  else $("depth").textContent = n ? "That is every match." : "Nothing matches.";
  if (state.file) offerUpload(state.file, true);
}

// A query by an uploaded file says so and offers to run it again (or, after a reload, to choose the file again).
function offerUpload(name, available) {
  const again = $("again");
  again.textContent = available ? `Search again by ${name}` : `Choose ${name} again`;
  again.dataset.available = available ? "1" : "";
  again.hidden = false;
}

// ------------------------------------------------------------------------------------------------ cards

function describe(item) {
  if (item.width != null && item.height != null) return `${item.width}×${item.height}`;
  if (item.duration != null) return `${item.duration.toFixed(1)} s`;
  return "";
}

function card({ score, item }, index) {
  const card = $("card-template").content.firstElementChild.cloneNode(true);
  card.dataset.modality = item.modality;
  card.dataset.family = family(item);
  card.dataset.id = item.id;
  card.dataset.index = index;
  const link = card.querySelector(".open");
  link.href = urlOf({ ...current.state, item: item.id });
  link.setAttribute("aria-label", `Open ${item.name}`);
  const img = card.querySelector("img");
  img.src = item.thumbnail_url;
  img.alt = item.name;
  const name = card.querySelector(".name");
  name.textContent = item.name;
  name.title = item.path;
  card.querySelector(".badge").textContent = label(item.modality);
  card.querySelector(".extra").textContent = describe(item);
  card.querySelector(".value").textContent = score.toFixed(3);
  card.querySelector(".bar span").style.width = `${Math.max(0, Math.min(1, score)) * 100}%`;
  card.querySelector(".like").setAttribute("aria-label", `More like this: ${item.name}`);
  if (family(item) === "audio") card.querySelector(".media").append(player(item, "none"));
  return card;
}

function player(item, preload) {
  const audio = document.createElement("audio");
  audio.controls = true;
  audio.preload = preload;
  audio.src = item.media_url;
  audio.setAttribute("aria-label", `Play ${item.name}`);
  return audio;
}

function onResultsClick(event) {
  const card = event.target.closest(".card");
  if (!card || event.target.closest("audio")) return;
  const id = Number(card.dataset.id);
  if (event.target.closest(".like")) {
    moreLike(id);
    return;
  }
  const link = event.target.closest("a.open");
  if (link && (event.ctrlKey || event.metaKey || event.shiftKey || event.altKey || event.button !== 0)) return;
  event.preventDefault();
  navigate({ item: id }, { opened: true });
}

// Arrow keys, Home and End move between the cards (Enter opens one).
function onResultsKey(event) {
  const link = event.target.closest && event.target.closest("a.open");
  if (!link) return;
  const links = [...$("results").querySelectorAll("a.open")];
  const at = links.indexOf(link);
  const columns = getComputedStyle($("results")).gridTemplateColumns.split(" ").length;
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, ArrowDown: at + columns, ArrowUp: at - columns, Home: 0,
    End: links.length - 1 }[event.key];
  if (to === undefined) return;
  event.preventDefault();
  links[Math.max(0, Math.min(links.length - 1, to))].focus();
}

function moreLike(id) {
  return newQuery({ like: id });
}

// ------------------------------------------------------------------------------------------------ item view

async function openViewer(id) {
  const index = current ? current.results.findIndex((result) => result.item.id === id) : -1;
  let item = index >= 0 ? current.results[index].item : null;
  if (!item) {
    try {
      const response = await fetch(`/items/${id}`);
      const payload = await response.json().catch(() => null);
      if (!response.ok || !payload) throw new Error((payload && payload.detail) || `HTTP ${response.status}`);
      item = payload;
    } catch (err) {
      showMessage(`Item ${id} cannot be shown: ${err instanceof TypeError ? UNREACHABLE : err.message}`);
      return;
    }
    if (readUrl().item !== id) return;
  }
  viewerIndex = index;
  fillViewer(item, index >= 0 ? current.results[index].score : null);
  const dialog = $("viewer");
  if (!dialog.open) {
    lastFocus = document.activeElement;
    dialog.showModal();
    $("viewer-close").focus();
  }
}

function fillViewer(item, score) {
  $("viewer").dataset.id = item.id;
  $("viewer").dataset.family = family(item);
  $("viewer-title").textContent = item.name;
  const media = $("viewer-media");
  media.replaceChildren();
  const img = document.createElement("img");
  if (family(item) === "image") {
    img.src = item.media_url;
    img.addEventListener("error", () => { img.src = item.thumbnail_url; }, { once: true });
    img.alt = item.name;
  } else {
    img.src = item.thumbnail_url;
    img.alt = family(item) === "audio" ? `Waveform of ${item.name}` : `Preview of ${item.name}`;
  }
  media.append(img);
  if (family(item) === "audio") media.append(player(item, "metadata"));
  const rows = [["Path", item.path], ["Modality", item.modality], ["Type", item.media_type || "unknown"],
    ["Size", size(item.size)]];
  if (item.width != null && item.height != null) rows.push(["Dimensions", `${item.width} × ${item.height} px`]);
  if (item.duration != null) rows.push(["Duration", `${item.duration.toFixed(2)} s`]);
  for (const [key, value] of Object.entries(item)) {
    if (!SHOWN.has(key) && ["number", "string"].includes(typeof value)) {
      rows.push([capitalised(key.replace(/_/g, " ")), String(value)]);
    }
  }
  if (score != null) rows.push(["Score", score.toFixed(3)]);
  rows.push(["Modified", new Date(item.mtime_ns / 1e6).toLocaleString()]);
  $("viewer-meta").replaceChildren(...rows.flatMap(([name, value]) => {
    const term = document.createElement("dt");
    term.textContent = name;
    const detail = document.createElement("dd");
    detail.textContent = value;
    detail.dataset.field = name.toLowerCase();
    return [term, detail];
  }));
  $("viewer-download").href = item.media_url;
  $("viewer-download").download = item.name;
  $("viewer-download").setAttribute("aria-label", `Download ${item.name}`);
  $("viewer-like").setAttribute("aria-label", `More like this: ${item.name}`);
  $("viewer-prev").disabled = viewerIndex <= 0;
  $("viewer-next").disabled = viewerIndex < 0 || viewerIndex >= current.results.length - 1;
  showCaption(item);
}

// With a decoder (/health's captioning), the item view shows a caption of the item, generated by the service.
async function showCaption(item) {
  const box = $("viewer-caption");
  const text = $("viewer-caption-text");
  const mine = ++captionRequest;
  const can = Boolean(health && health.captioning && (health.caption_modalities || []).includes(item.modality));
  box.hidden = !can;
  if (!can) return;
  box.dataset.state = "loading";
  box.setAttribute("aria-busy", "true");
  text.textContent = "Writing a caption…";
  let shown;
  let state = "error";
  try {
    const response = await fetch(`/items/${item.id}/caption`);
    const payload = await response.json().catch(() => null);
    if (mine !== captionRequest) return;
    if (response.ok && payload && typeof payload.caption === "string") {
      state = "done";
      shown = payload.caption.trim() || "(the model wrote nothing)";
    } else {
      const detail = payload && typeof payload.detail === "string" ? payload.detail : `HTTP ${response.status}`;
      shown = response.status === 503 ? `The service is busy, try again in a moment: ${detail}`
        : `No caption: ${detail}`;
    }
  } catch (err) {
    if (mine !== captionRequest) return;
    shown = UNREACHABLE;
  }
  box.dataset.state = state;
  box.removeAttribute("aria-busy");
  text.textContent = oneLine(shown);
}

function hideViewer() {
  const dialog = $("viewer");
  if (!dialog.open) return;
  const id = dialog.dataset.id;
  captionRequest++; // a caption still on its way is not shown
  dialog.close();
  $("viewer-media").replaceChildren(); // stops a playing sound
  const link = $("results").querySelector(`.card[data-id="${id}"] a.open`);
  (link || (document.contains(lastFocus) ? lastFocus : $("query"))).focus();
}

function closeViewer() {
  if (history.state && history.state.opened) history.back();
  else navigate({ ...readUrl(), item: null }, { replace: true });
}

function step(delta) {
  const next = current && current.results[viewerIndex + delta];
  if (viewerIndex < 0 || !next) return;
  history.replaceState(history.state, "", urlOf({ ...readUrl(), item: next.item.id }));
  openViewer(next.item.id);
}

// ------------------------------------------------------------------------------------------------ setup

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

async function loadHealth() {
  try {
    const response = await fetch("/health");
    const payload = await response.json().catch(() => null);
    if (!response.ok || !payload) throw new Error((payload && payload.detail) || `HTTP ${response.status}`);
    health = payload;
  } catch (err) {
    $("status").textContent = "Service unreachable";
    showMessage(err instanceof TypeError ? UNREACHABLE : `The search service answered with an error: ${err.message}`);
    return false;
  }
  buildFilter(health.item_modalities);
  const kinds = Object.entries(health.modalities).map(([m, n]) => `${n} ${label(m, n !== 1)}`);
  $("status").textContent = `${health.items} items (${kinds.join(", ") || "empty"}) · query by `
    + `${health.query_modalities.join(", ")}`;
  if (!health.query_modalities.includes("text")) {
    $("query").disabled = true;
    $("query").placeholder = "This index's model cannot embed text; drop a file instead";
  }
  return true;
}

function useFile(file) {
  if (!file) return;
  if (health && file.size > health.max_upload_bytes) {
    showMessage(`Upload refused: ${file.name} is ${megabytes(file.size)}, over this service's limit of `
      + `${megabytes(health.max_upload_bytes)}.`);
    return;
  }
  const preview = $("upload-preview");
  preview.replaceChildren();
  if (file.type.startsWith("image/")) {
    const img = document.createElement("img");
    img.src = URL.createObjectURL(file);
    img.alt = "";
    preview.append(img);
  }
  preview.append(document.createTextNode(file.name));
  const key = `upload-${Date.now()}-${++uploads}`; // unique across reloads, which keep history.state
  files.set(key, file);
  navigate({ q: "", like: null, file: file.name }, { upload: key });
}

function setup() {
  $("text-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("query").value.trim();
    if (text) newQuery({ q: text });
    else showMessage("Type something to search for, or drop a file.");
  });
  $("file-input").addEventListener("change", (event) => {
    useFile(event.target.files[0]);
    event.target.value = "";
  });
  $("choose-file").addEventListener("click", () => $("file-input").click());
  const zone = $("dropzone");
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("over"));
  }
  zone.addEventListener("click", (event) => {
    if (event.target === zone || event.target.closest(".drop-text, .drop-icon")) $("file-input").click();
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    useFile(event.dataTransfer.files[0]);
  });
  // Before any results, a new filter or page size replaces the history entry instead of adding one.
  const shown = () => ({ replace: !(current && current.echo) });
  $("filter").addEventListener("change", (event) => {
    if (event.target.name === "modality") navigate({ modality: event.target.value }, shown());
  });
  $("k").addEventListener("change", () => navigate({ k: Number($("k").value) }, shown()));
  $("again").addEventListener("click", () => {
    if ($("again").dataset.available) {
      current = null;
      apply(readUrl());
    } else {
      $("file-input").click();
    }
  });
  $("more").addEventListener("click", loadMore);
  $("results").addEventListener("click", onResultsClick);
  $("results").addEventListener("keydown", onResultsKey);
  const dialog = $("viewer");
  dialog.addEventListener("cancel", (event) => { event.preventDefault(); closeViewer(); });
  dialog.addEventListener("click", (event) => { if (event.target === dialog) closeViewer(); });
  dialog.addEventListener("keydown", (event) => {
    if (event.target.closest("audio")) return;
    if (event.key === "ArrowLeft") step(-1);
    else if (event.key === "ArrowRight") step(1);
  });
  $("viewer-close").addEventListener("click", closeViewer);
  $("viewer-prev").addEventListener("click", () => step(-1));
  $("viewer-next").addEventListener("click", () => step(1));
  $("viewer-like").addEventListener("click", () => moreLike(Number(dialog.dataset.id)));
  window.addEventListener("popstate", () => apply(readUrl()));
}

async function start() {
  setup();
  if (await loadHealth()) await apply(readUrl());
}

document.addEventListener("DOMContentLoaded", start);
