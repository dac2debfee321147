// The generation form: max new tokens stays below the chosen model's context window (the server
// refuses more, naming the field; this only says so before the form is sent).
(function () {
  "use strict";
  const model = document.getElementById("model"), tokens = document.getElementById("max_new_tokens");
  if (!model || !tokens) return;
  function cap() {
    const context = Number(model.selectedOptions[0] && model.selectedOptions[0].dataset.context);
    const limit = Number(tokens.dataset.limit);
    const max = context ? Math.min(limit || Infinity, context - 1) : limit;
    if (max && Number.isFinite(max)) tokens.max = String(max);
  }
  model.addEventListener("change", cap);
  cap();
})();
