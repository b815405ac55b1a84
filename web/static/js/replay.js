// The replay page: a marker of the session timeline (or a segment) opens its recording in the <video> at the
// marker's offset, without reloading the page; the links work on their own too (?segment=&t=). The segment URLs
// carry the playback tickets the server signed for this supervisor; the <video> fetches them with HTTP ranges.

import { fmt } from "./media.js";

const video = document.getElementById("replay-video");
const now = document.getElementById("now-playing");

function seekWhenReady(offset) {
  const seek = () => {
    video.currentTime = offset;
    video.play().catch(() => {});
  };
  if (video.readyState >= 1) seek(); else video.addEventListener("loadedmetadata", seek, { once: true });
}

function open(link) {
  const offset = Number(link.dataset.offset || 0);
  video.muted = true;   // started by a click: sound can be turned on from the controls
  if (video.dataset.segment !== link.dataset.segment) {
    video.src = link.dataset.url;
    video.dataset.segment = link.dataset.segment;
  }
  video.dataset.offset = String(offset);
  seekWhenReady(offset);
  now.textContent = fmt(video.dataset.describe, { place: link.dataset.label || "", segment: link.textContent.trim(),
    offset: offset.toFixed(1) });
  for (const other of document.querySelectorAll("a.mark[aria-current], a.segment[aria-current]")) {
    other.removeAttribute("aria-current");
  }
  link.setAttribute("aria-current", "true");
  history.replaceState(null, "", `?segment=${encodeURIComponent(link.dataset.segment)}&t=${offset.toFixed(3)}`);
}

if (video) {
  for (const link of document.querySelectorAll("a.mark, a.segment")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      open(link);
    });
  }
  if (video.dataset.offset) {   // opened from a link: start at its offset
    video.muted = true;
    seekWhenReady(Number(video.dataset.offset));
  }
}
