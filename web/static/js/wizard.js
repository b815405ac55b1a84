// The tender wizard: a live total of the evaluation points and the days to the bid deadline, as the agent types.
// Both are hints; the server checks the same on saving and on publishing (the statute comes from the page).
const form = document.getElementById("tender-wizard");

function fill(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, key) => values[key]);
}

// whole hundredths, so that 33.33 + 33.33 + 33.34 makes exactly 100
function hundredths(text) {
  const m = /^\s*(\d+)(?:\.(\d{1,2}))?\s*$/.exec(text);
  return m ? Number(m[1]) * 100 + Number((m[2] || "").padEnd(2, "0")) : null;
}

function showMethod() {
  const scored = form.querySelector("#m-comprehensive").checked;
  form.querySelector("#scoring").hidden = !scored;
  form.querySelector("#mean-benchmark").hidden = form.querySelector("#price_rule").value !== "mean_benchmark";
}

function total() {
  const out = form.querySelector("#points-total");
  let sum = 0;
  let any = false;
  for (const input of form.querySelectorAll("input.points")) {
    if (!input.value.trim()) continue;
    const value = hundredths(input.value);
    if (value === null) { out.className = "off"; return; }
    sum += value;
    any = true;
  }
  if (!any) return;
  const text = (sum / 100).toFixed(2).replace(/\.00$/, "");
  out.textContent = sum === 10000 ? out.dataset.ok : fill(out.dataset.off, { total: text });
  out.className = sum === 10000 ? "ok" : "off";
  out.dataset.total = text;
}

function period() {
  const deadline = form.querySelector("#bid_deadline_at");
  const out = form.querySelector("#period-check");
  const method = form.querySelector("#method").value;
  const when = Date.parse(deadline.value + ":00+08:00");
  if (Number.isNaN(when)) { out.textContent = ""; return; }
  const days = Math.floor((when - Date.now()) / 86400000);
  const needs = deadline.dataset.tendering.split(" ").includes(method);
  const short = needs && days < Number(deadline.dataset.minDays);
  out.textContent = fill(short ? out.dataset.short : out.dataset.ok, { days });
  out.className = short ? "off" : "ok";
}

if (form) {
  form.addEventListener("input", () => { total(); period(); });
  form.addEventListener("change", () => { showMethod(); total(); period(); });
  showMethod();
  total();
  period();
}
