// catalog's web view: a little help where the browser runs scripts. Every page works
// without it: the forms have their buttons, the links are plain links.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Toggles and choices take effect at once (the Filter and Run buttons stay for
  // browsers without script).
  const fields = "form[data-autosubmit] input[type=checkbox], form[data-autosubmit] select";
  for (const field of document.querySelectorAll(fields)) {
    field.addEventListener("change", () => field.form.requestSubmit());
  }

  // "/" jumps to the filter box, as in many listings.
  const box = document.getElementById("filter");
  if (box) {
    document.addEventListener("keydown", (event) => {
      const typing = event.target.closest("input, select, textarea");
      if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        box.focus();
        box.select();
      }
    });
  }

  // Times are shown in UTC; their tooltip gets the browser's local time as well.
  for (const time of document.querySelectorAll("time[datetime]")) {
    const local = new Date(time.dateTime);
    if (!Number.isNaN(local.getTime())) {
      const shown = local.toLocaleString();
      time.title = time.title ? `${time.title} (${shown} local)` : `${shown} local`;
    }
  }
});
