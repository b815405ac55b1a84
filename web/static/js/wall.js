// The supervisor's video wall: every place of the session live from the relay (receive only), each tile with its
// health (fps, bitrate, packets lost, time of the last frame) and the "place video lost" / "restored" alerts the
// server pushes. Texts come from the page's data-* attributes, translated.

import { clock, fmt, listen, receive, socketTarget, statusLine, videoFor } from "./media.js";

const wall = document.getElementById("wall");
const tiles = document.getElementById("wall-tiles");
const alerts = document.getElementById("wall-alerts");
const labels = {};

function tileOf(place, info) {
  let box = tiles.querySelector(`[data-place="${CSS.escape(place)}"]`);
  if (!box) {
    box = document.createElement("figure");
    box.className = "tile wall-tile";
    box.dataset.place = place;
    const picture = document.createElement("div");
    picture.className = "picture";
    const caption = document.createElement("figcaption");
    const name = document.createElement("strong");
    name.textContent = info.camera ? `${wall.dataset.camera} · ${info.label}` : info.label;
    const health = document.createElement("span");
    health.className = "health";
    health.textContent = "—";
    caption.append(name, " ", health);
    box.append(picture, caption);
    tiles.append(box);
  }
  return box;
}

function showPlace(place, info, stream) {
  labels[place] = info.label;
  const box = tileOf(place, info);
  const name = box.querySelector("figcaption strong").textContent;
  box.querySelector(".picture").replaceChildren(videoFor(stream, name));
  let audio = box.querySelector("audio");
  let button = box.querySelector("button.listen");
  if (!audio) {
    audio = document.createElement("audio");
    button = document.createElement("button");
    button.type = "button";
    button.className = "secondary listen";
    button.setAttribute("aria-pressed", "false");
    box.querySelector("figcaption").append(" ", button, audio);
  }
  button.textContent = wall.dataset.listen;
  button.onclick = async () => {
    const on = button.getAttribute("aria-pressed") !== "true";
    if (on) await listen(audio, stream); else audio.pause();
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.textContent = on ? wall.dataset.stopListening : wall.dataset.listen;
  };
}

function showStats(places) {
  for (const row of places) {
    const box = tiles.querySelector(`[data-place="${CSS.escape(row.place)}"]`);
    if (!box) continue;
    const health = box.querySelector(".health");
    box.classList.toggle("lost", Boolean(row.video_lost));
    if (!row.publishing) {
      health.textContent = wall.dataset.notPublishing;
    } else {
      health.textContent = `${row.fps} ${wall.dataset.fps} · ${row.bitrate_kbps} ${wall.dataset.kbps} · `
        + `${row.packets_lost} ${wall.dataset.lostPackets} · ${wall.dataset.lastFrame} ${clock(row.last_frame_at)}`;
    }
    if (row.muted) health.textContent += ` · ${wall.dataset.muted}`;
    health.dataset.fps = row.fps;
    health.dataset.lastFrame = row.last_frame_at || "";
  }
}

function alert(kind, msg) {
  const empty = alerts.querySelector(".no-alert");
  if (empty) empty.remove();
  const place = labels[msg.place] || msg.place;
  const item = document.createElement("li");
  item.className = `alert-${kind}`;
  item.dataset.event = msg.event;
  item.dataset.place = msg.place;
  item.textContent = fmt(wall.dataset[`alert${kind[0].toUpperCase()}${kind.slice(1)}`],
    { place, time: clock(new Date().toISOString()) });
  alerts.prepend(item);
  const box = tiles.querySelector(`[data-place="${CSS.escape(msg.place)}"]`);
  if (box) box.classList.toggle("lost", kind !== "restored");
}

if (wall && wall.dataset.watch) {
  window.bidroomWall = receive(socketTarget(wall, "watch", "watch"), statusLine(document.getElementById("wall-status")), {
    place: showPlace,
    stats: showStats,
    event(msg) {
      if (msg.event === "place_video_lost") alert("lost", msg);
      else if (msg.event === "place_video_restored") alert("restored", msg);
      else if (msg.event === "place_video_fault") alert("fault", msg);
    },
  }, 2000);
}
