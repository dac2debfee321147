// The GAN page: the stabilisers are a DCGAN's (hidden for a VAE), and the sampling form's class
// picker lists the chosen model's classes.
(() => {
  const $ = (id) => document.getElementById(id);
  const architecture = $("architecture");
  function showStabilisers() {
    $("stabilisers").hidden = architecture.value === "vae";
  }
  if (architecture) {
    architecture.addEventListener("change", showStabilisers);
    showStabilisers();
  }

  const model = $("model");
  const picker = $("sample-class");
  function fillClasses() {
    const option = model.selectedOptions[0];
    const classes = option ? JSON.parse(option.dataset.classes || "[]") : [];
    const keep = picker.value || picker.dataset.selected || "";
    picker.replaceChildren(picker.options[0]);
    classes.forEach((name) => picker.add(new Option(name, name)));
    picker.value = classes.includes(keep) ? keep : "";
    picker.disabled = classes.length === 0;
    picker.dataset.selected = "";
  }
  if (model && picker) {
    model.addEventListener("change", fillClasses);
    fillClasses();
  }
})();
