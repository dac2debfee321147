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
    if (out && out.model && out.steps !== undefined) {
      $("usage").textContent = `Model ${out.model} · ${out.steps} steps · validation loss ` +
        `${out.first_valid_loss} → ${out.valid_loss}` +
        (out.resumed_from_step ? ` · resumed from step ${out.resumed_from_step}` : "");
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

  // Metrics arrive as events; fetch only the new ones on each tick.
  const metrics = { train_loss: [], valid_loss: [] };
  let lastSeq = -1;
  let inFlight = null;
  async function fetchEvents() {
    for (let page = 0; page < 200; page++) {  // the server pages 500 events at a time
      const resp = await fetch(`${root.dataset.events}?after=${lastSeq}`, { credentials: "same-origin" });
      if (!resp.ok) return;
      const events = (await resp.json()).data;
      for (const e of events) {
        lastSeq = e.seq;
        if (e.type === "metric" && metrics[e.name]) metrics[e.name].push({ step: e.step, value: e.value });
      }
      if (events.length < 500) break;
    }
    if (window.drawLossChart($("loss-svg"), metrics.train_loss, metrics.valid_loss)) $("loss").hidden = false;
  }
  function pollEvents() {  // one fetch at a time, so no event is counted twice
    if (!inFlight) inFlight = fetchEvents().finally(() => { inFlight = null; });
    return inFlight;
  }

  async function poll() {
    try {
      const resp = await fetch(root.dataset.url, { credentials: "same-origin" });
      if (resp.ok) render(await resp.json());
      await pollEvents();
    } catch (e) { /* the server blinked; try again on the next tick */ }
    if (root.dataset.terminal !== "true") setTimeout(poll, 1000);
  }

  render(JSON.parse($("initial-job").textContent));
  pollEvents().catch(() => {});
  if (root.dataset.terminal !== "true") setTimeout(poll, 500);
})();
