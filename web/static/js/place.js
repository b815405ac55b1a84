// The place page: live range checks on the score sheets (the server checks every score again when saved),
// and the local camera preview in the media region. Messages come from the page (data-* attributes), translated.

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

for (const form of document.querySelectorAll("form.score-sheet")) {
  for (const input of form.querySelectorAll("input.score")) {
    input.addEventListener("input", () => { checkScore(input, form); total(form); });
    checkScore(input, form);
  }
  total(form);
}

// the camera preview: a local stream only; the media plane's publishing joins here when it is deployed
const start = document.getElementById("start-camera");
const tile = document.getElementById("camera-preview");
if (start && tile) {
  start.addEventListener("click", async () => {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
      const video = document.createElement("video");
      video.muted = true;
      video.autoplay = true;
      video.playsInline = true;
      video.setAttribute("aria-label", tile.dataset.label);
      video.srcObject = stream;
      tile.replaceChildren(video);
      start.disabled = true;
    } catch (err) {
      tile.textContent = tile.dataset.denied;
    }
  });
}
