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

// Stats panels fetch themselves again, as often as the server says (data-every, in ms), while the
// page is visible; a session that ended stops them.
function refresh(panel) {
  setTimeout(async () => {
    if (document.hidden) return refresh(panel);
    try {
      const response = await fetch(panel.dataset.live, { credentials: "same-origin" });
      if (response.redirected) return;
      if (response.ok) {
        const next = new DOMParser().parseFromString(await response.text(), "text/html").body.firstElementChild;
        if (next && next.id === panel.id) {
          const open = [...panel.querySelectorAll("details")].map((details) => details.open);
          next.querySelectorAll("details").forEach((details, index) => { details.open = open[index] ?? false; });
          if (next.innerHTML !== panel.innerHTML) {
            panel.replaceWith(next);
            panel = next;
          } else {
            panel.dataset.every = next.dataset.every;
          }
        }
      }
    } catch {
      // The network hiccuped: try again at the next turn.
    }
    refresh(panel);
  }, Number(panel.dataset.every) || 1000);
}
document.querySelectorAll("[data-live]").forEach(refresh);

// Import: the file goes up in one request; the answer streams a line per row (NDJSON), shown as it
// comes.
const importForm = document.getElementById("import");
if (importForm) {
  importForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = importForm.querySelector("input[type=file]").files[0];
    if (!file) return;
    const box = document.getElementById("import-progress");
    const bar = document.getElementById("import-bar");
    const summary = document.getElementById("import-summary");
    const rows = document.querySelector("#import-results tbody");
    box.hidden = false;
    rows.replaceChildren();
    bar.value = 0;
    summary.textContent = `Importing ${file.name}…`;
    const button = importForm.querySelector("button");
    button.disabled = true;
    try {
      const response = await fetch(importForm.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "text/csv", "x-csrf-token": importForm.dataset.csrf },
        body: file,
      });
      if (!response.ok || response.redirected) {
        const why = response.status === 401 || response.redirected
          ? "your session has ended; sign in again"
          : (response.headers.get("content-type") ?? "").startsWith("application/problem+json")
            ? (await response.json()).detail
            : `the server answered ${response.status}; reload the page and try again`;
        summary.textContent = `Not imported: ${why}.`;
        return;
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let pending = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pending += value;
        const lines = pending.split("\n");
        pending = lines.pop();
        for (const text of lines.filter(Boolean)) {
          const line = JSON.parse(text);
          if ("rows" in line) {
            bar.max = Math.max(line.rows, 1);
          } else if (line.done) {
            summary.textContent = `Done: ${line.created} created, ${line.refused} refused.`;
          } else {
            bar.value = line.row;
            const row = rows.insertRow();
            row.insertCell().textContent = line.row;
            row.insertCell().textContent = line.status === 201 ? "created" : `refused (${line.status})`;
            const cell = row.insertCell();
            if (line.link) {
              const link = document.createElement("a");
              link.href = `/ui/links/${encodeURIComponent(line.link.code)}`;
              link.textContent = line.link.short_url;
              cell.append(link);
            } else {
              cell.textContent = [line.problem?.field, line.problem?.detail].filter(Boolean).join(": ");
            }
            summary.textContent = `${line.row} of ${bar.max} rows…`;
          }
        }
      }
    } catch (error) {
      summary.textContent = `The import stopped: ${error.message}. Rows listed above were handled.`;
    } finally {
      button.disabled = false;
    }
  });
}
