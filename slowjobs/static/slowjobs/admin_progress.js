// Job changelist: refresh the status and progress of the jobs on the page
// every two seconds while any of them is unfinished.
(function () {
  "use strict";
  const source = document.getElementById("slowjobs-progress-url");
  if (!source) return;
  const url = source.dataset.url;
  const finished = new Set();

  function tickets() {
    return Array.from(document.querySelectorAll(".slowjobs-bar"))
      .map((bar) => bar.dataset.ticket)
      .filter((ticket) => !finished.has(ticket));
  }

  async function poll() {
    const open = tickets();
    if (!open.length) return;
    const query = open.map((t) => "t=" + encodeURIComponent(t)).join("&");
    try {
      const response = await fetch(url + "?" + query, { credentials: "same-origin" });
      if (response.ok) {
        const jobs = await response.json();
        for (const [ticket, job] of Object.entries(jobs)) {
          const sel = '[data-ticket="' + ticket + '"]';
          const bar = document.querySelector(".slowjobs-bar" + sel);
          const pct = document.querySelector(".slowjobs-percent" + sel);
          const status = document.querySelector(".slowjobs-status" + sel);
          if (bar) bar.value = job.percent === null ? 0 : job.percent;
          if (pct) pct.textContent = job.percent === null ? "" : job.percent + "%";
          if (status) status.textContent = job.status;
          if (job.finished) finished.add(ticket);
        }
      }
    } catch (error) { /* try again */ }
    setTimeout(poll, 2000);
  }
  setTimeout(poll, 1000);
})();
