// Forms that undo work (cancel) ask first: a form with data-confirm submits only when the user agrees.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
