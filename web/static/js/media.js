// The media plane from a page: the signaling of evaluation.media.signaling over the page's own WebSocket paths
// (web.pages.media: the cookie session, same-origin only), one RTCPeerConnection per socket, VP8 and Opus preferred.
// With media workers on, the region carries data-media-ticket: each connection first asks the page for the socket's
// URL at the session's worker and a media ticket, sent as the socket's first message.
// A dropped connection is tried again (1 s, 2 s, 4 s ... at most 10 s); a refusal (4401, 4403, 4404, 4409) is not.

const REFUSALS = new Set([4400, 4401, 4403, 4404, 4409]);
const PREFERRED = { video: "video/VP8", audio: "audio/opus" };

export function socketUrl(path) {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
}

// Status text from the element's data-* attributes (translated by the page): connecting, live, lost, reconnecting,
// refused, denied. The element carries data-state for styles and tests.
export function statusLine(el) {
  return (state, detail) => {
    if (!el) return;
    el.dataset.state = state;
    el.textContent = (el.dataset[state] || state) + (detail ? ` (${detail})` : "");
  };
}

function prefer(transceiver, kind) {
  const caps = window.RTCRtpSender && RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities(kind);
  if (!caps || !transceiver.setCodecPreferences) return;
  const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === PREFERRED[kind].toLowerCase());
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== PREFERRED[kind].toLowerCase());
  if (first.length) transceiver.setCodecPreferences([...first, ...rest]);
}

// the server takes one complete description: wait for every candidate (a closed network: host candidates only)
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); } };
    const timer = setTimeout(resolve, 3000);
    pc.addEventListener("icegatheringstatechange", done);
  });
}

// Where a region's socket is: its page path (data-publish, data-conference, data-watch), or with media workers a
// ticket request for that socket.
export function socketTarget(el, key, socket) {
  if (!el.dataset.mediaTicket) return el.dataset[key];
  return { ticket: el.dataset.mediaTicket, csrf: el.dataset.csrf, socket, place: el.dataset.place };
}

async function resolveTarget(where) {
  if (typeof where === "string") return { url: socketUrl(where), token: null };
  const resp = await fetch(where.ticket, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": where.csrf },
    body: JSON.stringify({ socket: where.socket, place_id: where.place }),
  });
  const data = await resp.json().catch(() => null);
  if (!resp.ok || !data || !data.url) {
    const err = new Error((data && data.error && data.error.message) || String(resp.status));
    err.refused = resp.status >= 400 && resp.status < 500 && resp.status !== 429;
    throw err;
  }
  return data;
}

// One signaling connection kept up: `start(ws)` wires a fresh socket and returns a cleanup function.
function keepUp(where, status, start) {
  let attempt = 0;
  let stopped = false;
  let ws = null;
  let cleanup = () => {};
  let timer = null;

  function retry() {
    status("lost");
    const wait = Math.min(10000, 1000 * 2 ** attempt);
    attempt += 1;
    timer = setTimeout(open, wait);
  }

  async function open() {
    if (stopped) return;
    status(attempt === 0 ? "connecting" : "reconnecting");
    let target;
    try {
      target = await resolveTarget(where);
    } catch (err) {
      if (err.refused) { stopped = true; status("refused", err.message); } else retry();
      return;
    }
    if (stopped) return;
    ws = new WebSocket(target.url);
    const mine = ws;
    // the ticket goes first, before the offer that `start` sends when the socket opens
    if (target.token) ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "auth", token: target.token })));
    cleanup = start(ws, () => { attempt = 0; });
    ws.addEventListener("close", (event) => {
      if (mine !== ws) return;
      cleanup();
      if (stopped) return;
      if (REFUSALS.has(event.code)) {
        stopped = true;
        status("refused", event.reason || String(event.code));
        return;
      }
      retry();
    });
  }
  open();
  return {
    send(message) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message)); },
    stop() { stopped = true; clearTimeout(timer); if (ws) ws.close(1000); cleanup(); },
  };
}

// Publish a local stream to a place: send only.
export function publish(path, stream, status) {
  return keepUp(path, status, (ws, connected) => {
    const pc = new RTCPeerConnection({ iceServers: [] });
    for (const track of stream.getTracks()) {
      prefer(pc.addTransceiver(track, { direction: "sendonly", streams: [stream] }), track.kind);
    }
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "connected") { connected(); status("live"); }
      if (pc.connectionState === "failed" || pc.connectionState === "disconnected") ws.close();
    });
    ws.addEventListener("message", async (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "ready") {
        await pc.setLocalDescription(await pc.createOffer());
        await gathered(pc);
        ws.send(JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }));
      } else if (msg.type === "answer") {
        await pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
      }
    });
    return () => pc.close();
  });
}

// Receive places from the relay: the server offers, the page answers. `on.place(id, info, stream)` once per place
// and connection, `on.event(msg)` for lost/restored/muted events, `on.stats(places)` for the health figures,
// `on.offer(msg)` with the offer (its `chair` flag).
export function receive(path, status, on, statsEveryMs = 0) {
  return keepUp(path, status, (ws, connected) => {
    let pc = null;
    let poll = null;
    ws.addEventListener("message", async (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "offer") {
        if (on.offer) on.offer(msg);
        pc = new RTCPeerConnection({ iceServers: [] });
        const streams = {};
        const byMid = {};
        for (const [place, info] of Object.entries(msg.places || {})) {
          streams[place] = new MediaStream();
          byMid[info.video] = place;
          byMid[info.audio] = place;
        }
        pc.addEventListener("track", (e) => {
          const place = byMid[e.transceiver.mid];
          if (place) streams[place].addTrack(e.track);
        });
        pc.addEventListener("connectionstatechange", () => {
          if (pc.connectionState === "connected") { connected(); status("live"); }
          if (pc.connectionState === "failed" || pc.connectionState === "disconnected") ws.close();
        });
        await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
        for (const [place, info] of Object.entries(msg.places || {})) on.place(place, info, streams[place]);
        await pc.setLocalDescription(await pc.createAnswer());
        await gathered(pc);
        ws.send(JSON.stringify({ type: "answer", sdp: pc.localDescription.sdp }));
        if (statsEveryMs) {
          ws.send(JSON.stringify({ type: "stats" }));
          poll = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: "stats" })),
            statsEveryMs);
        }
      } else if (msg.type === "event" && on.event) {
        on.event(msg);
      } else if (msg.type === "stats" && on.stats) {
        on.stats(msg.places || []);
      } else if (msg.type === "error" && on.error) {
        on.error(msg);
      }
    });
    return () => { clearInterval(poll); if (pc) pc.close(); };
  });
}

// A muted, autoplaying <video> for a stream (the sound goes through its own <audio>, see `listen`).
export function videoFor(stream, label) {
  const video = document.createElement("video");
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  video.setAttribute("aria-label", label);
  video.srcObject = stream;
  video.play().catch(() => {});
  return video;
}

// The sound of a stream; resolves false when the browser holds it back until the user interacts.
export async function listen(audio, stream) {
  audio.srcObject = stream;
  try { await audio.play(); return true; } catch (err) { return false; }
}

// Asia/Shanghai wall-clock time of an ISO instant.
export function clock(iso, lang) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(lang || document.documentElement.lang || "zh-CN",
    { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false })
    .format(new Date(iso));
}

export function fmt(template, values) {
  return (template || "").replace(/\{(\w+)\}/g, (_, key) => values[key] ?? "");
}
