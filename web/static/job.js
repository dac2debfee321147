// The job page: redraw from the job JSON, polling until the job reaches a terminal status.
(function () {
  "use strict";
  const TERMINAL = ["succeeded", "failed", "canceled"];
  const root = document.getElementById("job");
  const $ = (id) => document.getElementById(id);

  function render(job) {
    const status = $("status");
    status.textContent = job.status;
    status.className = "status status-" + job.status;
    const p = job.progress || {};
    const pct = job.status === "succeeded" ? 100 : (p.total ? Math.min(100, 100 * p.completed / p.total) : 0);
    $("bar").style.width = pct.toFixed(1) + "%";
    let text = p.total ? `${p.completed} / ${p.total} ${p.unit || ""}` : "";
    if (p.eta_s != null && !TERMINAL.includes(job.status)) text += ` · about ${Math.ceil(p.eta_s)} s left`;
    if (job.attempts > 1) text += ` · attempt ${job.attempts}`;
    $("progress-text").textContent = text;
    if (job.error) {
      $("error").hidden = false;
      $("error").textContent = `${job.error.code}: ${job.error.message}`;
    }
    const out = job.output;
    if (out && out.choices) {
      const box = $("choices");
      box.replaceChildren();
      for (const c of out.choices) {
        const fig = document.createElement("figure");
        fig.className = "choice";
        const cap = document.createElement("figcaption");
        cap.textContent = `Choice ${c.index} · finished by ${c.finish_reason}`;
        const pre = document.createElement("pre");
        pre.className = "completion";
        pre.textContent = c.text;
        fig.append(cap, pre);
        box.append(fig);
      }
      $("usage").textContent = `${out.usage.prompt_tokens} prompt tokens, ${out.usage.completion_tokens} completion tokens, seed ${out.seed}`;
    }
    const links = $("artifacts");
    links.replaceChildren();
    for (const a of job.artifacts || []) {
      const link = document.createElement("a");
      // The page's own route: the session authorises it (a.url wants an API key).
      link.href = `${root.dataset.base}/artifacts/${encodeURIComponent(a.name)}`;
      link.textContent = `Download ${a.name} (${a.bytes} bytes)`;
      links.append(link);
    }
    if (TERMINAL.includes(job.status)) {
      const cancel = $("cancel-form");
      if (cancel) cancel.remove();
      root.dataset.terminal = "true";
    }
  }

  async function poll() {
    try {
      const resp = await fetch(root.dataset.url, { credentials: "same-origin" });
      if (resp.ok) render(await resp.json());
    } catch (e) { /* the server blinked; try again on the next tick */ }
    if (root.dataset.terminal !== "true") setTimeout(poll, 1000);
  }

  render(JSON.parse($("initial-job").textContent));
  if (root.dataset.terminal !== "true") setTimeout(poll, 500);
})();
