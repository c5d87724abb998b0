// Follows one job over its websocket: the server sends the current state, then each change.
(function () {
  const root = document.getElementById("job");
  if (!root) return;
  const bar = document.getElementById("job-progress-bar");
  const state = document.getElementById("job-state");
  const message = document.getElementById("job-message");
  const live = document.getElementById("job-live");
  const finished = new Set(["succeeded", "failed"]);

  function show(job) {
    bar.style.width = job.progress + "%";
    bar.textContent = job.progress + " %";
    bar.parentElement.setAttribute("aria-valuenow", job.progress);
    bar.classList.toggle("bg-success", job.state === "succeeded");
    bar.classList.toggle("bg-danger", job.state === "failed");
    state.textContent = job.state;
    message.textContent = job.message;
  }

  function connect(delay) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(scheme + "://" + location.host + root.dataset.wsPath);
    let done = false;
    socket.onopen = () => { live.textContent = "connected"; delay = 500; };
    socket.onmessage = (event) => {
      const job = JSON.parse(event.data);
      show(job);
      if (finished.has(job.state)) { done = true; socket.close(); live.textContent = "finished"; }
    };
    socket.onclose = (event) => {
      if (done) return;
      if (event.code === 4401 || event.code === 4404) { live.textContent = "not allowed"; return; }
      live.textContent = "reconnecting…";
      setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
    };
  }
  connect(500);
})();
