// The image page: the class picker follows the chosen model; a submitted job's images appear in a
// grid as soon as it ends, and a click opens one full size.
(() => {
  const $ = (id) => document.getElementById(id);

  function fillClasses() {
    const model = $("model");
    const picker = $("class");
    if (!model || !picker) return;
    const option = model.selectedOptions[0];
    const classes = option ? JSON.parse(option.dataset.classes || "[]") : [];
    const keep = picker.value || picker.dataset.selected || "";
    picker.replaceChildren(picker.options[0] || new Option("(read it from the prompt)", ""));
    classes.forEach((name) => picker.add(new Option(name, name)));
    picker.value = classes.includes(keep) ? keep : "";
    picker.dataset.selected = "";
  }

  function openViewer(img) {
    const viewer = $("viewer");
    $("viewer-image").src = img.dataset.full;
    $("viewer-image").alt = img.alt;
    $("viewer-caption").textContent = img.alt;
    viewer.showModal();
  }

  function showImages(job, base) {
    const grid = $("image-grid");
    // The images API's jobs store each image; a sampling job from the GAN page has its grid.
    const files = (job.artifacts || []).filter((a) => /^image-\d+\.png$/.test(a.name));
    const images = files.length ? files : (job.artifacts || []).filter((a) => a.name === "grid.png");
    const out = job.output || {};
    const count = files.length || out.n || 0;
    $("results-title").textContent = out.class !== undefined ? `“${out.class}” × ${count}` : `${count} images`;
    grid.replaceChildren();
    for (const a of images) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "thumb";
      const img = document.createElement("img");
      img.src = `${base}/artifacts/${encodeURIComponent(a.name)}?inline=1`;
      img.dataset.full = img.src;
      img.alt = `${out.class !== undefined ? out.class : "sample"}, ${a.name} (${out.size || ""}, seed ${out.seed})`;
      button.append(img);
      button.addEventListener("click", () => openViewer(img));
      grid.append(button);
    }
  }

  async function follow() {
    const box = $("results");
    if (!box) return;
    // Bounded: a sampling job ends in seconds; after ten minutes the job page is the place to look.
    for (let i = 0; i < 1200; i++) {
      const resp = await fetch(box.dataset.job, { credentials: "same-origin" });
      if (resp.ok) {
        const job = await resp.json();
        $("results-status").textContent = job.status === "succeeded" ? "Done: click an image to see it full size."
          : job.status === "failed" ? `Failed: ${(job.error || {}).message || "see the job page"}` : job.status;
        if (job.status === "succeeded") return showImages(job, box.dataset.base);
        if (["failed", "canceled"].includes(job.status)) {
          $("results-title").textContent = "No images";
          return;
        }
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  const model = $("model");
  if (model) model.addEventListener("change", fillClasses);
  // The picker wins over the prompt when both are set: typing a new prompt clears the picker, so
  // a class picked for the last images does not override what was just typed.
  const prompt = $("prompt");
  if (prompt) prompt.addEventListener("input", () => { $("class").value = ""; });
  fillClasses();
  follow();
})();
