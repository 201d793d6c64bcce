// The demo page and the source viewer; served from this origin (CSP script-src 'self').
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // The viewer: bring the citation into view even when the link carried no #cited.
  const cited = document.getElementById("cited");
  if (cited && location.hash !== "#cited") cited.scrollIntoView({ block: "center" });

  // The demo page: a button that copies the embed snippet.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(source.textContent);
      button.textContent = "Copied";
      setTimeout(() => (button.textContent = "Copy"), 1500);
    });
  }
});
