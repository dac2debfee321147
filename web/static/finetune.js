// The fine-tune form: the LoRA rank shows only for the LoRA method, and a file over the upload limit
// is refused beside its field before it is sent (the server refuses it too, with a whole-page error).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const form = $("finetune-form"), method = $("method"), rank = $("lora-rank"), upload = $("training_upload");
  if (!form) return;
  function showRank() {
    rank.hidden = method.value !== "lora";
  }
  method.addEventListener("change", showRank);
  showRank();

  form.addEventListener("submit", (event) => {
    const file = upload.files[0], limit = Number(upload.dataset.maxBytes);
    const old = $("training_upload-error");
    if (old) old.remove();
    upload.removeAttribute("aria-invalid");
    upload.setAttribute("aria-describedby", "training_upload-hint");
    if (!file || !limit || file.size <= limit) return;
    event.preventDefault();
    const error = document.createElement("span");
    error.className = "field-error";
    error.id = "training_upload-error";
    error.setAttribute("role", "alert");
    error.textContent = `The file is ${file.size} bytes; uploads are limited to ${upload.dataset.maxSize}`;
    upload.setAttribute("aria-invalid", "true");
    upload.setAttribute("aria-describedby", `training_upload-hint ${error.id}`);
    $("training_upload-hint").after(error);
  });
})();
