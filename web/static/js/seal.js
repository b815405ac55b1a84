// Seals the bid bundle in the browser with age (npm age-encryption) to the tender's recipient, then uploads only
// the ciphertext to the page's bid endpoint, which runs the API's upload handler. Unticking "seal it here" sends
// the plain bundle for the server to seal (the fallback); without JavaScript the form posts the file.
import { Encrypter } from '/static/vendor/age-encryption/dist/index.js';

const form = document.getElementById('bid-form');
const input = document.getElementById('bundle');
const sealHere = document.getElementById('seal-here');
const box = form.querySelector('.progress');
const bar = document.getElementById('bid-progress');
const label = document.getElementById('bid-progress-label');
const status = document.getElementById('bid-status');
const msg = form.dataset;

function show(text, fraction) {
  box.hidden = false;
  label.textContent = text;
  bar.value = Math.round(fraction * 100);
}

// Reads the file through a counting stream into age's streaming encrypter: progress follows the bytes sealed.
async function seal(file, onProgress) {
  let done = 0;
  const counted = file.stream().pipeThrough(new TransformStream({
    transform(chunk, controller) {
      done += chunk.byteLength;
      onProgress(file.size ? done / file.size : 1);
      controller.enqueue(chunk);
    },
  }));
  const encrypter = new Encrypter();
  encrypter.addRecipient(msg.recipient);
  const sealed = await encrypter.encrypt(counted);
  const parts = [];
  const reader = sealed.getReader();
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    parts.push(value);
  }
  return new Blob(parts, { type: 'application/age' });
}

function upload(body, contentType, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', form.getAttribute('action').split('?')[0]);
    xhr.setRequestHeader('Content-Type', contentType);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('X-CSRF-Token', msg.csrf);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201 && data) resolve(data);
      else reject(new Error((data && data.error && data.error.message) || msg.msgFailed));
    };
    xhr.onerror = () => reject(new Error(msg.msgFailed));
    xhr.send(body);
  });
}

function showReceipt(signed) {
  const section = document.getElementById('receipt');
  const values = { ...signed.receipt, signature: signed.signature };
  for (const el of section.querySelectorAll('[data-field]')) el.textContent = values[el.dataset.field] ?? '';
  const link = document.getElementById('receipt-download');
  link.href = URL.createObjectURL(new Blob([JSON.stringify(signed, null, 2)], { type: 'application/json' }));
  link.download = `receipt-${signed.receipt.bid}.json`;
  section.hidden = false;
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const file = input.files[0];
  if (!file) { status.textContent = msg.msgChoose; return; }
  if (file.size > Number(msg.maxBytes)) { status.textContent = msg.msgTooLarge; return; }
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  status.textContent = '';
  try {
    let body = file;
    let type = 'application/x-tar';
    if (sealHere.checked) {
      body = await seal(file, (f) => show(msg.msgSealing, f * 0.5));
      type = 'application/age';
    }
    const base = sealHere.checked ? 0.5 : 0;
    const signed = await upload(body, type, (f) => show(msg.msgUploading, base + f * (1 - base)));
    show(msg.msgDone, 1);
    status.textContent = msg.msgDone;
    showReceipt(signed);
  } catch (err) {
    status.textContent = `${msg.msgFailed} ${err.message}`;
  } finally {
    button.disabled = false;
  }
});
