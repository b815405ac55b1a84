// Forms marked data-upload: the same multipart form, sent with XMLHttpRequest so the progress bar follows the
// bytes. On success the browser goes where the server's 303 led (the desk, the document listed); on a refusal
// the error of the page the server answered with (in the user's language) shows under the form. Without
// JavaScript the form posts as usual.
for (const form of document.querySelectorAll("form[data-upload]")) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const bar = form.querySelector("progress.upload");
    const button = form.querySelector("button[type=submit]");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("action"));
    xhr.setRequestHeader("Accept", "text/html");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && bar) { bar.hidden = false; bar.value = e.loaded / e.total; }
    };
    const fail = (message) => {
      const alert = form.querySelector("p.alert");
      if (alert) { alert.hidden = false; alert.textContent = message; }
      if (button) button.disabled = false;
      if (bar) bar.hidden = true;
      form.removeAttribute("aria-busy");
    };
    xhr.onload = () => {
      if (xhr.status < 400) {
        window.location.assign(xhr.responseURL || window.location.href);
        return;
      }
      const page = new DOMParser().parseFromString(xhr.responseText, "text/html");
      const refusal = page.querySelector(".alert:not([hidden])");
      fail(refusal ? refusal.textContent.trim() : form.dataset.failed);
    };
    xhr.onerror = () => fail(form.dataset.failed);
    if (button) button.disabled = true;
    if (bar) { bar.hidden = false; bar.value = 0; }
    form.setAttribute("aria-busy", "true");
    xhr.send(new FormData(form));
  });
}
