// A fine-tune's job page: its kept checkpoints (fetched again when the job's last checkpoint or its
// status moves, not on every progress tick), Pause or Resume as the status allows, and once it has
// succeeded a link to chat with its model. job.js announces each render with a "job-render" event.
(function () {
  "use strict";
  const root = document.getElementById("job");
  const $ = (id) => document.getElementById(id);
  if (!root || !root.dataset.finetune) return;
  const TERMINAL = ["succeeded", "failed", "canceled"];
  const chatUrl = (model) => `${root.dataset.chat}?model=${encodeURIComponent(model)}`;
  let fetchedFor = null, latest = null, pauseRequested = false;

  function cell(row, label, content) {
    const td = document.createElement("td");
    td.dataset.label = label;
    td.append(content);
    row.append(td);
    return td;
  }

  function renderCheckpoints(rows, succeeded) {
    $("checkpoints").hidden = !rows.length;
    const body = $("checkpoint-rows");
    body.replaceChildren();
    const loss = (v) => (v == null ? "–" : Number(v).toFixed(4));
    for (const c of rows) {
      const tr = document.createElement("tr");
      cell(tr, "Step", String(c.step));
      cell(tr, "Training loss", loss(c.train_loss));
      cell(tr, "Validation loss", loss(c.valid_loss));
      // A kept checkpoint becomes a model of its own when the job succeeds.
      let model = "once the job succeeds";
      if (succeeded) {
        model = document.createElement("a");
        model.href = chatUrl(c.model);
        model.title = "Chat with this checkpoint";
        model.textContent = c.model;
      }
      cell(tr, "Model", model).className = succeeded ? "id" : "id muted";
      body.append(tr);
    }
  }

  function showActions(job, pauseRequested) {
    const pause = $("pause-form"), resume = $("resume-form"), ended = TERMINAL.includes(job.status);
    const pausing = job.status === "running" && pauseRequested;
    if (pause) pause.hidden = ended || pausing || !["queued", "running"].includes(job.status);
    if (resume) resume.hidden = ended || !(job.status === "paused" || pausing);
    $("pause-note").hidden = !pausing;
    const link = $("chat-link");
    link.hidden = !(job.status === "succeeded" && job.output && job.output.model);
    if (!link.hidden) link.href = chatUrl(job.output.model);
  }

  async function fetchExtras() {
    try {
      const resp = await fetch(root.dataset.finetune, { credentials: "same-origin" });
      if (!resp.ok) return;
      const extras = await resp.json();
      pauseRequested = extras.pause_requested;
      renderCheckpoints(extras.checkpoints, latest.status === "succeeded");
      showActions(latest, pauseRequested);
    } catch (e) { fetchedFor = null; /* the server blinked: the next render tries again */ }
  }

  root.addEventListener("job-render", (event) => {
    latest = event.detail;
    showActions(latest, pauseRequested);
    const key = `${(latest.checkpoint || {}).step}|${latest.status}`;
    if (key !== fetchedFor) {
      fetchedFor = key;
      fetchExtras();
    }
  });
})();
