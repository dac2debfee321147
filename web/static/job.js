// The job page: redraw from the job JSON, polling until the job reaches a terminal status.
(function () {
  "use strict";
  const TERMINAL = ["succeeded", "failed", "canceled"];
  const root = document.getElementById("job");
  const $ = (id) => document.getElementById(id);
  // How this kind's output is shown: its `page` in the job-kind registry (core/job_kinds.py).
  const page = root.dataset.page;

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
        pre.textContent = c.message ? c.message.content : c.text;  // text.chat replies carry a message
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
    if (out && out.model && page === "gan.train") {
      $("usage").textContent = `Model ${out.model} · ${out.epochs} epochs, ${out.steps} steps on ${out.images} images` +
        (out.skipped_images ? ` (${out.skipped_images} unreadable, skipped)` : "") + ` · D loss ${out.loss_d}, G loss ${out.loss_g}`;
      const link = $("sample-link");
      link.hidden = false;
      link.href = `${root.dataset.gan}?model=${encodeURIComponent(out.model)}#sample-card`;
    }
    renderQuality(out);
    renderGallery(job);
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

  // Images the job publishes (GAN grids): shown as a gallery, newest last, as they arrive.
  function renderGallery(job) {
    const images = (job.artifacts || []).filter((a) => a.content_type === "image/png");
    const box = $("gallery");
    box.hidden = !images.length;
    box.className = "gallery" + (page === "gan.sample" ? " large" : "");
    const have = new Set([...box.querySelectorAll("img")].map((img) => img.dataset.name + ":" + img.dataset.bytes));
    if (images.every((a) => have.has(a.name + ":" + a.bytes)) && have.size === images.length) return;
    box.replaceChildren();
    for (const a of images) {
      const fig = document.createElement("figure");
      const img = document.createElement("img");
      img.src = `${root.dataset.base}/artifacts/${encodeURIComponent(a.name)}?inline=1`;
      img.alt = a.name;
      img.dataset.name = a.name;
      img.dataset.bytes = a.bytes;
      const cap = document.createElement("figcaption");
      const epoch = a.name.match(/^samples-epoch-(\d+)\.png$/);
      cap.textContent = epoch ? `epoch ${Number(epoch[1])}` : a.name;
      fig.append(img, cap);
      box.append(fig);
    }
  }

  function renderQuality(out) {
    const q = out && out.quality;
    if (!q) return;
    $("quality").hidden = false;
    $("quality").textContent = `Digit score over ${q.samples} samples: ${(100 * q.confident_share).toFixed(1)}% ` +
      `recognisable, ${q.classes_covered}/10 digits covered, Fréchet distance ${q.frechet_distance} ` +
      `(classifier accuracy ${(100 * q.classifier_accuracy).toFixed(1)}%)`;
  }

  // Metrics arrive as events; fetch only the new ones on each tick.
  const metrics = { train_loss: [], valid_loss: [], loss_d: [], loss_g: [] };
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
    const gan = metrics.loss_d.length > 0;
    const series = gan
      ? [{ points: metrics.loss_d, cls: "train-line" }, { points: metrics.loss_g, cls: "line-2" }]
      : [{ points: metrics.train_loss, cls: "train-line" }, { points: metrics.valid_loss, cls: "valid-line", dots: "valid-dot" }];
    if (window.drawLossChart($("loss-svg"), series)) {
      $("loss").hidden = false;
      $("loss-names").textContent = gan ? "discriminator, generator" : "training, validation";
    }
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
