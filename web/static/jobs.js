// The jobs list: reload every few seconds while a listed job is queued or running, so statuses and
// progress move without a click (bounded: after an hour of it, the page stays as it is).
(() => {
  const table = document.getElementById("jobs-table");
  if (!table || table.dataset.active !== "true") {
    sessionStorage.removeItem("jobs-refresh-since");
    return;
  }
  const started = Number(sessionStorage.getItem("jobs-refresh-since") || Date.now());
  if (Date.now() - started > 3600 * 1000) return;
  sessionStorage.setItem("jobs-refresh-since", String(started));
  setTimeout(() => location.reload(), 5000);
})();
