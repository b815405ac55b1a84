// Lists the operations of the OpenAPI document; no external assets, so it works on a closed network.
(async () => {
  const spec = await (await fetch('/api/v1/openapi.json')).json();
  const root = document.getElementById('ops');
  root.textContent = '';
  const byTag = {};
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      (byTag[op.tags[0]] ||= []).push({path, method, op});
    }
  }
  for (const [tag, ops] of Object.entries(byTag).sort()) {
    const h = document.createElement('h2'); h.textContent = tag; root.appendChild(h);
    for (const {path, method, op} of ops) {
      const d = document.createElement('details');
      const s = document.createElement('summary');
      s.innerHTML = '<code class="m"></code> <code class="p"></code> <span></span>';
      s.children[0].textContent = method.toUpperCase();
      s.children[1].textContent = path;
      s.children[2].textContent = op.summary || '';
      d.appendChild(s);
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify({parameters: op.parameters, requestBody: op.requestBody,
                                        responses: op.responses}, null, 2);
      d.appendChild(pre);
      root.appendChild(d);
    }
  }
})();
