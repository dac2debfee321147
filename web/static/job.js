// The job page: redraw from the job JSON as the job's live event stream (server-sent events) says it moved.
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
    // Screen readers read the bar's value (and hear the status, a live region, change).
    $("progress").setAttribute("aria-valuenow", String(Math.round(pct)));
    let text = p.total ? `${p.completed} / ${p.total} ${p.unit || ""}` : "";
    $("progress").setAttribute("aria-valuetext", text || job.status);
    if (p.eta_s != null && !TERMINAL.includes(job.status) && job.status !== "paused") {
      text += ` · about ${Math.ceil(p.eta_s)} s left`;
    }
    if (job.attempts > 1) text += ` · attempt ${job.attempts}`;
    if (job.status === "queued" && job.queue_position) {  // refreshed by the page's 5 s tick while it waits
      const place = job.queue_position === 1 ? "Next in line" : `Number ${job.queue_position} in line`;
      text = text ? `${place} · ${text}` : place;
    }
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
        // text.chat replies carry a message. A completion often starts on a new line after the prompt
        // (the ad writer's always does): the box starts with its first line of text.
        pre.textContent = c.message ? c.message.content : c.text.replace(/^[\r\n]+/, "");
        fig.append(cap, pre);
        box.append(fig);
      }
      $("usage").textContent = `${out.usage.prompt_tokens} prompt tokens, ${out.usage.completion_tokens} completion tokens, seed ${out.seed}`;
    }
    if (out && out.model && out.steps !== undefined) {
      const method = { lora: " (LoRA)", full: " (every weight)" }[out.method] || "";
      $("usage").textContent = `Model ${out.model}${method} · ${out.steps} steps · validation loss ` +
        `${out.first_valid_loss} → ${out.valid_loss}` +
        (out.resumed_from_step ? ` · resumed from step ${out.resumed_from_step}` : "");
    }
    if (out && out.model && page === "gan.train") {
      $("usage").textContent = `Model ${out.model} · ${out.epochs} epochs, ${out.steps} steps on ${out.images} images` +
        (out.skipped_images ? ` (${out.skipped_images} unreadable, skipped)` : "") +
        (out.architecture === "vae" ? ` · reconstruction ${out.loss_rec}, KL ${out.loss_kl}` : ` · D loss ${out.loss_d}, G loss ${out.loss_g}`) +
        (out.conditional ? ` · conditional on ${out.classes.length} classes` : "");
      const link = $("sample-link");
      link.hidden = false;
      link.href = `${root.dataset.gan}?model=${encodeURIComponent(out.model)}#sample-card`;
      if (out.conditional) {
        const ask = $("images-link");
        ask.hidden = false;
        ask.href = `${root.dataset.images}?model=${encodeURIComponent(out.model)}`;
      }
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
    // What one kind adds to the page (finetune_job.js: checkpoints, pause and resume) follows each render.
    root.dispatchEvent(new CustomEvent("job-render", { detail: job }));
  }

  // Images the job publishes (GAN grids): shown as a gallery, newest last, as they arrive.
  function renderGallery(job) {
    // The gallery shows grids; a job that stored single images instead (image-001.png, ... from the
    // images API or page) shows those.
    const pngs = (job.artifacts || []).filter((a) => a.content_type === "image/png");
    const grids = pngs.filter((a) => !/^image-\d+\.png$/.test(a.name));
    const images = grids.length ? grids : pngs;
    const box = $("gallery");
    box.hidden = !images.length;
    box.className = "gallery" + (page === "gan.sample" && grids.length ? " large" : "");
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
      // A click opens the image full size in a new tab (a grid is small in a gallery column).
      const link = document.createElement("a");
      link.href = img.src;
      link.target = "_blank";
      link.rel = "noopener";
      link.title = `Open ${a.name} full size`;
      link.append(img);
      const cap = document.createElement("figcaption");
      const epoch = a.name.match(/^samples-epoch-(\d+)\.png$/);
      cap.textContent = epoch ? `epoch ${Number(epoch[1])}` : a.name;
      fig.append(link, cap);
      box.append(fig);
    }
  }

  function renderQuality(out) {
    const q = out && out.quality;
    if (!q) return;
    $("quality").hidden = false;
    $("quality").textContent = `Digit score over ${q.samples} samples: ${(100 * q.confident_share).toFixed(1)}% ` +
      `recognisable, ${q.classes_covered}/10 digits covered, Fréchet distance ${q.frechet_distance} ` +
      `(classifier accuracy ${(100 * q.classifier_accuracy).toFixed(1)}%)` +
      (q.label_fidelity !== undefined ? ` · label fidelity ${(100 * q.label_fidelity).toFixed(1)}% (the share drawn as the digit asked for)` : "");
  }

  // Metrics arrive as events: the backlog is fetched once, then the page follows the job's live
  // event stream (server-sent events), refreshing the record when its status or progress moves.
  const metrics = { train_loss: [], valid_loss: [], loss_d: [], loss_g: [], loss_rec: [], loss_kl: [] };
  let lastSeq = -1;
  function take(e) {
    lastSeq = e.seq;
    if (e.type === "metric" && metrics[e.name]) metrics[e.name].push({ step: e.step, value: e.value });
  }
  function drawChart() {
    let series, names;
    if (metrics.loss_d.length) {
      series = [{ points: metrics.loss_d, cls: "train-line" }, { points: metrics.loss_g, cls: "line-2" }];
      names = "discriminator, generator";
    } else if (metrics.loss_rec.length) {
      series = [{ points: metrics.loss_rec, cls: "train-line" }, { points: metrics.loss_kl, cls: "line-2", right: true }];
      names = "reconstruction (left axis), KL (right axis)";
    } else {
      series = [{ points: metrics.train_loss, cls: "train-line" }, { points: metrics.valid_loss, cls: "valid-line", dots: "valid-dot" }];
      names = "training, validation";
    }
    if (window.drawLossChart($("loss-svg"), series)) {
      $("loss").hidden = false;
      $("loss-names").textContent = names;
    }
  }
  async function fetchEvents() {
    for (let page = 0; page < 200; page++) {  // the server pages 500 events at a time
      const resp = await fetch(`${root.dataset.events}?after=${lastSeq}`, { credentials: "same-origin" });
      if (!resp.ok) return;
      const events = (await resp.json()).data;
      events.forEach(take);
      if (events.length < 500) break;
    }
    drawChart();
  }

  let refreshing = null, again = false;
  async function refresh() {  // one fetch of the record at a time; a request during it runs once after
    if (refreshing) { again = true; return refreshing; }
    refreshing = (async () => {
      try {
        const resp = await fetch(root.dataset.url, { credentials: "same-origin" });
        if (resp.ok) render(await resp.json());
      } catch (e) { /* the server blinked: the next event or tick tries again */ }
    })().finally(() => { refreshing = null; if (again) { again = false; refresh(); } });
    return refreshing;
  }

  function follow() {
    const source = new EventSource(`${root.dataset.live}?after=${lastSeq}`);
    source.onmessage = (message) => {
      const e = JSON.parse(message.data);
      if (e.seq <= lastSeq) return;  // a reconnect may repeat what was seen
      take(e);
      if (e.type === "metric") drawChart();
      if (e.type === "status" || e.type === "progress") refresh();
      if (e.type === "status" && TERMINAL.includes(e.status)) source.close();
    };
    // EventSource reconnects by itself (with Last-Event-ID); a slow tick covers whatever an event
    // does not say (a newly published image) and a stream that cannot be had at all.
    const tick = setInterval(() => {
      if (root.dataset.terminal === "true") { clearInterval(tick); source.close(); return; }
      refresh();
    }, 5000);
  }

  render(JSON.parse($("initial-job").textContent));
  fetchEvents().catch(() => {}).finally(() => {
    if (root.dataset.terminal !== "true") follow();
  });
})();
