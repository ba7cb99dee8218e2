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

  function show(jobs) {
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

  function query(open) {
    return open.map((t) => "t=" + encodeURIComponent(t)).join("&");
  }

  async function poll() {
    const open = tickets();
    if (!open.length) return;
    try {
      const response = await fetch(url + "?" + query(open), { credentials: "same-origin" });
      if (response.ok) show(await response.json());
    } catch (error) { /* try again */ }
    setTimeout(poll, 2000);
  }

  // Pushed where the server streams events (ASGI); polled where it does not.
  const eventsUrl = source.dataset.eventsUrl;
  function follow() {
    const open = tickets();
    if (!open.length) return;
    const stream = new EventSource(eventsUrl + "?" + query(open));
    stream.addEventListener("progress", (event) => {
      show(JSON.parse(event.data));
      if (!tickets().length) stream.close();
    });
    stream.addEventListener("error", () => {
      if (stream.readyState === EventSource.CLOSED) setTimeout(poll, 2000);
    });
  }
  if (eventsUrl && window.EventSource) follow(); else setTimeout(poll, 1000);
})();
