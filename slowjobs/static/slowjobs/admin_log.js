// The admin's job page: follow a running job's log lines as they come.
(function () {
  "use strict";
  const pre = document.querySelector("pre.slowjobs-log");
  if (!pre || pre.dataset.finished === "1") return;
  let after = Number(pre.dataset.after || 0);

  function shown(line) {
    return `${String(line.at).slice(11, 23)} ${line.level} ${line.logger}: ${line.message}\n`;
  }

  async function follow() {
    try {
      const response = await fetch(`${pre.dataset.logUrl}?after=${after}`, {
        credentials: "same-origin", headers: { Accept: "application/json" },
      });
      if (response.ok) {
        const log = await response.json();
        for (const line of log.lines) {
          if (line.n < after) continue;
          pre.append(document.createTextNode(shown(line)));
          after = line.n + 1;
        }
        pre.dataset.after = String(after);
        if (log.finished) { pre.dataset.finished = "1"; return; }
      }
    } catch (error) { /* the server is restarting: try again */ }
    setTimeout(follow, 1000);
  }
  setTimeout(follow, 1000);
})();
