// Kurz UI: the little that needs a script. Everything works without it except copying.
"use strict";

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const status = button.parentElement.querySelector(".copied");
  try {
    await navigator.clipboard.writeText(button.dataset.copy);
    if (status) status.textContent = "Copied";
  } catch {
    if (status) status.textContent = "Copy failed: select the link and copy it";
  }
});
