// The place page: live range checks on the score sheets (the server checks every score again when saved), and
// the media region: my camera's preview and its publication to my place, the other members' video and sound (the
// committee conference), and the chair's mute. Messages come from the page (data-* attributes), translated.
// While the member is on air, the page's forms are sent without leaving the page, and the page keeps itself up to
// date, so the camera, its recording and the conference run on through every ballot, sheet and signature.

import { listen, publish, receive, socketTarget, statusLine, videoFor } from "./media.js";

const DECIMAL = /^\d+(\.\d+)?$/;

function fmt(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, key) => values[key] ?? "");
}

function checkScore(input, form) {
  const decimals = Number(form.dataset.decimals || 2);
  const max = Number(input.dataset.max);
  const msg = document.getElementById(input.getAttribute("aria-describedby"));
  const raw = input.value.trim();
  let problem = "";
  if (raw !== "") {
    const places = raw.includes(".") ? raw.split(".")[1].length : 0;
    if (!DECIMAL.test(raw) || places > decimals) {
      problem = fmt(form.dataset.notANumber, { decimals });
    } else if (Number(raw) < 0 || Number(raw) > max) {
      problem = fmt(form.dataset.outOfRange, { max: input.dataset.max });
    }
  }
  input.setCustomValidity(problem);
  input.setAttribute("aria-invalid", problem ? "true" : "false");
  if (msg) msg.textContent = problem;
  return problem === "";
}

function total(form) {
  let sum = 0;
  let any = false;
  for (const input of form.querySelectorAll("input.score")) {
    const raw = input.value.trim();
    if (raw !== "" && DECIMAL.test(raw)) { sum += Number(raw); any = true; }
  }
  const decimals = Number(form.dataset.decimals || 2);
  form.querySelector(".sheet-total").textContent = any ? sum.toFixed(decimals) : "—";
}

function initSheets(root) {
  for (const form of root.querySelectorAll("form.score-sheet")) {
    for (const input of form.querySelectorAll("input.score")) {
      input.addEventListener("input", () => { checkScore(input, form); total(form); });
      checkScore(input, form);
    }
    total(form);
  }
}

initSheets(document);

// ---- the media region ------------------------------------------------------------------------------------------

const region = document.getElementById("media");
const tile = document.getElementById("camera-preview");
const start = document.getElementById("start-camera");
const publishStatus = statusLine(document.getElementById("publish-status"));
const soundOn = document.getElementById("sound-on");
const held = [];   // audio elements the browser would not start before a click

async function camera() {
  const stream = await navigator.mediaDevices.getUserMedia(
    { video: { width: 640, height: 480, frameRate: 15 }, audio: true });
  tile.replaceChildren(videoFor(stream, tile.dataset.label));
  return stream;
}

function memberTile(tiles, place, info, stream, chair, conference) {
  const box = document.createElement("figure");
  box.className = "tile remote";
  box.dataset.place = place;
  const name = `${region.dataset.member} ${info.member || ""} · ${info.label}`;
  const video = videoFor(stream, name);
  const audio = document.createElement("audio");
  const caption = document.createElement("figcaption");
  caption.textContent = name;
  const badge = document.createElement("span");
  badge.className = "badge muted-badge";
  badge.hidden = true;
  badge.textContent = region.dataset.muted;
  caption.append(" ", badge);
  box.append(video, audio, caption);
  if (chair) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary mute";
    button.textContent = region.dataset.mute;
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => {
      conference.send({ type: "mute", place, muted: button.getAttribute("aria-pressed") !== "true" });
    });
    caption.append(" ", button);
  }
  listen(audio, stream).then((playing) => {
    if (!playing) { held.push(audio); soundOn.hidden = false; }
  });
  return box;
}

function showMuted(place, muted) {
  const box = document.querySelector(`#committee-tiles [data-place="${CSS.escape(place)}"]`);
  if (!box) return;
  box.querySelector(".muted-badge").hidden = !muted;
  const button = box.querySelector("button.mute");
  if (button) {
    button.setAttribute("aria-pressed", muted ? "true" : "false");
    button.textContent = muted ? region.dataset.unmute : region.dataset.mute;
  }
}

async function onAir() {
  let stream;
  try {
    stream = await camera();
  } catch (err) {
    publishStatus("denied");
    return;
  }
  window.bidroomMedia = { publication: publish(socketTarget(region, "publish", "publish"), stream, publishStatus) };
  const tiles = document.getElementById("committee-tiles");
  let chair = false;
  const conference = receive(socketTarget(region, "conference", "conference"), statusLine(document.getElementById("conference-status")), {
    offer(msg) { chair = Boolean(msg.chair); tiles.replaceChildren(); },
    place(place, info, stream) { tiles.append(memberTile(tiles, place, info, stream, chair, conference)); },
    event(msg) { if (msg.event === "muted" || msg.event === "unmuted") showMuted(msg.place, msg.event === "muted"); },
  });
  window.bidroomMedia.conference = conference;
}

if (soundOn) {
  soundOn.addEventListener("click", () => {
    for (const audio of held.splice(0)) audio.play().catch(() => {});
    soundOn.hidden = true;
  });
}

if (region && region.dataset.publish) {
  onAir();
} else if (start && tile) {
  // before check-in: a preview of the camera only
  start.addEventListener("click", async () => {
    try {
      await camera();
      start.disabled = true;
    } catch (err) {
      tile.textContent = tile.dataset.denied;
    }
  });
}

// ---- on air: forms answered in place, the page kept up to date ---------------------------------------------------

const main = document.getElementById("main");
const REFRESH_MS = 10000;
const ALERT_KEPT_MS = 30000;   // a refused form's message stays this long before a refresh may replace it
let answered = 0;   // forms answered in place
let alertUntil = 0;

function sameMedia(other) {
  return other && other.dataset.publish === region.dataset.publish
    && other.dataset.conference === region.dataset.conference;
}

// Put the content of a place page (HTML) around the live media region; false when it is not this place on air
// (signed out, the session over, another page), and the caller then loads the page itself.
function swapContent(html) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  const next = doc.getElementById("main");
  if (!next || !sameMedia(doc.getElementById("media"))) return false;
  const before = [];
  const after = [];
  let seen = false;
  for (const node of Array.from(next.childNodes)) {
    if (node.id === "media") { seen = true; continue; }
    (seen ? after : before).push(document.adoptNode(node));
  }
  for (const node of Array.from(main.childNodes)) if (node !== region) node.remove();
  region.before(...before);
  region.after(...after);
  document.title = doc.title;
  initSheets(main);
  return true;
}

function editing() {
  // the member is typing or has changed a form not yet sent: a refresh would lose it
  const active = document.activeElement;
  if (active && active.form && (active.tagName === "TEXTAREA" || active.tagName === "SELECT"
      || (active.tagName === "INPUT" && !["checkbox", "radio", "submit", "button", "hidden"].includes(active.type)))) {
    return true;
  }
  for (const input of main.querySelectorAll("form input, form textarea")) {
    if (region.contains(input)) continue;
    if (input.type === "checkbox" || input.type === "radio") {
      if (input.checked !== input.defaultChecked) return true;
    } else if (input.type !== "hidden" && input.value !== input.defaultValue) return true;
  }
  return false;
}

async function refresh() {
  const resp = await fetch(location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (!resp.ok) return;
  const html = await resp.text();
  if (editing()) return;   // the member started typing while the page was fetched
  if (!swapContent(html)) location.reload();
}

function focusAfter(sectionId) {
  const alert = main.querySelector("[role=alert]");
  if (alert) alertUntil = Date.now() + ALERT_KEPT_MS;
  const target = alert || (sectionId && document.getElementById(sectionId));
  if (!target) return;
  if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
  target.focus();
  target.scrollIntoView({ block: "nearest" });
}

async function send(form, submitter) {
  const sectionId = form.closest("section") && form.closest("section").id;
  const body = new URLSearchParams(new FormData(form, submitter));
  const buttons = Array.from(form.querySelectorAll("button"));
  for (const button of buttons) button.disabled = true;   // one answer per click
  let resp;
  try {
    // the attribute, not form.action: a control named "action" (the score sheets' buttons) shadows the property
    resp = await fetch(form.getAttribute("action"), { method: "POST", body, credentials: "same-origin" });
  } catch (err) {
    for (const button of buttons) button.disabled = false;
    const note = document.createElement("div");
    note.className = "alert";
    note.setAttribute("role", "alert");
    note.textContent = region.dataset.unreachable;
    form.prepend(note);
    return;
  }
  if (!swapContent(await resp.text())) { location.assign(resp.redirected ? resp.url : location.pathname); return; }
  answered += 1;
  main.dataset.answered = String(answered);
  focusAfter(sectionId);
}

if (region && region.dataset.publish && main) {
  main.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || region.contains(form)
        || (form.getAttribute("method") || "").toLowerCase() !== "post") return;
    event.preventDefault();
    send(form, event.submitter);
  });
  setInterval(() => {
    if (!document.hidden && !editing() && Date.now() > alertUntil) refresh().catch(() => {});
  }, REFRESH_MS);
  window.bidroomPlace = { refresh };
}
