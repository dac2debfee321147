// Campaign pages: a live preview of the first prompts while filling the form; counts and downloads while it runs.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const TERMINAL = ["succeeded", "failed", "canceled"];

  const form = $("campaign-form");
  if (form) {
    const preview = $("preview");
    let latest = 0;  // previews can answer out of order: only the newest request's answer is shown
    async function refresh() {
      if (!$("file").files.length) return;
      const mine = ++latest;
      const body = new FormData(form);
      const resp = await fetch(form.dataset.preview, { method: "POST", body, credentials: "same-origin" });
      const data = await resp.json();
      if (mine !== latest) return;
      preview.replaceChildren();
      if (data.error) {
        const p = document.createElement("p");
        p.className = "error";
        p.textContent = `${data.error.param}: ${data.error.message}`;
        preview.append(p);
        return;
      }
      const head = document.createElement("p");
      head.className = "muted";
      head.textContent = `${data.rows} rows · columns: ${data.columns.join(", ")} · first prompts:`;
      const list = document.createElement("ol");
      for (const prompt of data.prompts) {
        const li = document.createElement("li");
        li.textContent = prompt;
        list.append(li);
      }
      preview.append(head, list);
    }
    $("file").addEventListener("change", refresh);
    $("template").addEventListener("input", () => { clearTimeout(refresh.t); refresh.t = setTimeout(refresh, 300); });
    // A file chosen before this script ran (a slow page load, a form the browser restored) fired its
    // events before anyone listened: preview it now.
    if ($("file").files.length) refresh();
  }

  const root = $("campaign");
  if (!root) return;
  function render(c) {
    $("status").textContent = c.status;
    $("status").className = "status status-" + c.status;
    const rc = c.request_counts;
    const done = rc.completed + rc.failed;
    const pct = rc.total ? 100 * done / rc.total : 0;
    $("bar").style.width = pct.toFixed(1) + "%";
    $("counts").textContent = `${done} / ${rc.total} rows · ${rc.completed} completed · ${rc.failed} failed`;
    $("progress").setAttribute("aria-valuenow", String(Math.round(pct)));
    $("progress").setAttribute("aria-valuetext", $("counts").textContent);
    const links = $("artifacts");
    links.replaceChildren();
    for (const a of c.artifacts || []) {
      const link = document.createElement("a");
      link.href = `${root.dataset.base}/artifacts/${encodeURIComponent(a.name)}`;
      link.textContent = `Download ${a.name} (${a.bytes} bytes)`;
      links.append(link);
    }
    if (TERMINAL.includes(c.status)) {
      const cancel = $("cancel-form");
      if (cancel) cancel.remove();
      return true;
    }
    return false;
  }
  // The counts move when a chunk finishes: the campaign's live event stream says when to read them.
  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const resp = await fetch(root.dataset.url, { credentials: "same-origin" });
      if (resp.ok && render(await resp.json())) stop();
    } catch (e) { /* the next event or tick tries again */ }
    busy = false;
  }
  let source = null, tick = null;
  function stop() {
    if (source) source.close();
    clearInterval(tick);
  }
  if (!render(JSON.parse($("initial-campaign").textContent))) {
    source = new EventSource(root.dataset.live);
    source.onmessage = () => refresh();
    tick = setInterval(refresh, 5000);  // whatever an event does not say; a stream that cannot be had
    refresh();
  }
})();
