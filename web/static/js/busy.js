// Forms marked data-busy: while the platform works on the submission, the button is held and a progress bar
// shows, so a slow step (forming a committee, booking) is not sent twice. The server decides everything.
for (const form of document.querySelectorAll("form[data-busy]")) {
  form.addEventListener("submit", () => {
    const bar = form.querySelector("progress.busy");
    if (bar) bar.hidden = false;
    for (const button of form.querySelectorAll("button[type=submit]")) {
      // after this event, so the button's own value (if any) is still sent
      setTimeout(() => { button.disabled = true; }, 0);
    }
    form.setAttribute("aria-busy", "true");
  });
}
