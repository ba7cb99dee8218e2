// Live status page: polls the status JSON until the job has finished.
// Without JavaScript, or when this script does not load, the page refreshes
// itself (its <meta http-equiv="refresh">); this script cancels that.
(function () {
  "use strict";
  const page = document.getElementById("job");
  if (!page) return;
  const statusUrl = page.dataset.statusUrl;
  const finished = new Set(["succeeded", "failed", "cancelled"]);
  const $ = (id) => document.getElementById(id);
  let startedAt = page.dataset.startedAt ? new Date(page.dataset.startedAt) : null;
  let stopped = false;
  const labels = JSON.parse($("status-labels").textContent);
  // The furthest progress shown of the current attempt: an answer from a
  // server that knows less (a database copy) does not move the bar back.
  let furthest = { attempts: -1, percent: -1 };
  // Stopping the page's loading cancels its refresh; after "load", so that
  // nothing the page needs is cut off.
  window.addEventListener("load", () => window.stop());

  function behind(job) {
    const percent = job.progress.percent;
    if (job.status !== "running" || percent === null) return false;
    if (job.attempts !== furthest.attempts) {
      furthest = { attempts: job.attempts, percent: percent };
      return false;
    }
    if (percent < furthest.percent) return true;
    furthest.percent = percent;
    return false;
  }

  function duration(seconds) {
    if (seconds === null || !isFinite(seconds) || seconds < 0) return "—";
    seconds = Math.round(seconds);
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    return (h ? h + " h " : "") + (h || m ? m + " min " : "") + s + " s";
  }

  function render(job) {
    if (behind(job)) return;
    $("status").textContent = labels[job.status] || job.status;
    $("status").className = "status-" + job.status;
    const percent = job.progress.percent;
    $("bar").value = percent === null ? 0 : percent;
    $("percent").textContent = percent === null ? "—" : percent.toFixed(1) + "%";
    $("message").textContent = job.progress.message || "";
    if (job.started_at) startedAt = new Date(job.started_at);
    const end = job.finished_at ? new Date(job.finished_at) : new Date();
    const log = $("log");
    if (log && job.log) {
      log.textContent = job.log.lines.map((line) =>
        `${line.at.slice(11, 23)} ${line.level} ${line.logger}: ${line.message}\n`).join("");
      const dropped = $("log-dropped");
      if (dropped && job.log.dropped) {
        dropped.hidden = false;
        dropped.textContent = `${job.log.dropped} older lines made way.`;
      }
    }
    const elapsed = startedAt ? (end - startedAt) / 1000 : null;
    $("elapsed").textContent = duration(elapsed);
    const left = percent && percent < 100 && elapsed !== null && !job.finished_at
      ? elapsed * (100 - percent) / percent : null;
    $("eta").textContent = job.finished_at ? "—" : duration(left);
    $("cancelling").hidden = !(job.cancel_requested && !finished.has(job.status));
    if (finished.has(job.status)) {
      if ($("cancel-form")) $("cancel-form").hidden = true;
      if (job.error) {
        $("error").textContent = job.error;
        $("error-row").hidden = $("error-row-label").hidden = false;
      }
      if (job.result !== null && job.status === "succeeded") {
        $("result").textContent = JSON.stringify(job.result, null, 2);
        $("result-row").hidden = $("result-row-label").hidden = false;
      }
      if (job.result_url) {
        $("download").href = job.result_url;
        $("download-row").hidden = $("download-row-label").hidden = false;
      }
    }
  }

  let etag = null;
  let last = null;

  async function poll() {
    if (stopped) return;
    try {
      const headers = { Accept: "application/json" };
      // Unchanged since the last answer: 304, and nothing to read.
      if (etag) headers["If-None-Match"] = etag;
      const response = await fetch(statusUrl, { headers, credentials: "same-origin" });
      if (response.ok) {
        etag = response.headers.get("ETag");
        const job = last = await response.json();
        render(job);
        if (finished.has(job.status)) { stopped = true; return; }
      } else if (response.status === 304 && last) {
        render(last);  // the same job: only the elapsed time moves on
      }
    } catch (error) { /* the server is restarting: try again */ }
    setTimeout(poll, 1000);
  }

  const form = $("cancel-form");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const token = form.querySelector("[name=csrfmiddlewaretoken]").value;
      const response = await fetch(form.action, {
        method: "POST", credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": token },
      });
      if (response.ok) render(await response.json());
    });
  }
  // Pushed where the server streams events (ASGI); polled where it does not.
  const eventsUrl = page.dataset.eventsUrl;
  function appendLog(data) {
    const pre = $("log");
    if (!pre) return;
    for (const line of data.lines) {
      pre.append(document.createTextNode(
        `${line.at.slice(11, 23)} ${line.level} ${line.logger}: ${line.message}\n`));
      pre.dataset.after = String(line.n + 1);
    }
  }
  function follow() {
    const url = new URL(eventsUrl, window.location.href);
    const pre = $("log");
    if (pre && pre.dataset.after) url.searchParams.set("after", pre.dataset.after);
    const source = new EventSource(url);
    source.addEventListener("status", (event) => render(last = JSON.parse(event.data)));
    source.addEventListener("log", (event) => appendLog(JSON.parse(event.data)));
    source.addEventListener("end", (event) => {
      stopped = true;
      source.close();
      render(last = JSON.parse(event.data));
    });
    source.addEventListener("error", () => {
      // Refused (too many watchers, the database away): poll instead.
      if (source.readyState === EventSource.CLOSED && !stopped) setTimeout(poll, 1000);
    });
    // Only the elapsed time moves on between events.
    const tick = setInterval(() => { if (stopped) clearInterval(tick); else if (last) render(last); }, 1000);
  }
  if (eventsUrl && window.EventSource) follow(); else setTimeout(poll, 500);
})();
