// Follows one order over its websocket: the server sends the whole snapshot on connect and on
// every change; the page redraws the steps, the servers and the cost from it. Live events ride
// on Redis, which may be slow or away: when the socket stays quiet while the order works, the
// page reads the snapshot from the database instead, and the live indicator says what it knows
// ("delayed, retrying" when the order waits on a platform service or has not moved for long).
(function () {
  const root = document.getElementById("order");
  if (!root) return;
  const finished = new Set(["active", "terminated", "failed", "cancelled"]);
  const live = document.getElementById("order-live");
  const QUIET_MS = 10000;
  let current = null; // the snapshot on show
  let heard = Date.now(); // when a snapshot last arrived, by socket or by poll
  let socketOpen = false;
  let unansweredSince = null; // the portal itself did not answer a poll
  let refused = false; // the socket said this user may not follow this order

  function text(tag, value, cls) {
    const el = document.createElement(tag);
    el.textContent = value == null ? "" : value;
    if (cls) el.className = cls;
    return el;
  }
  function time(iso) { return iso ? new Date(iso).toLocaleTimeString() : ""; }

  function showSteps(steps) {
    const list = document.getElementById("order-steps");
    list.replaceChildren(...steps.map((step) => {
      const li = document.createElement("li");
      li.className = "mb-2";
      li.dataset.step = step.key;
      li.dataset.state = step.state;
      const head = document.createElement("div");
      head.className = "d-flex justify-content-between small";
      const span = step.finished_at ? time(step.started_at) + " – " + time(step.finished_at) : time(step.started_at);
      head.append(text("span", step.label, "step-label"), text("span", span, "step-time text-body-secondary"));
      const outer = document.createElement("div");
      outer.className = "progress";
      outer.setAttribute("role", "progressbar");
      outer.setAttribute("aria-label", step.label);
      outer.setAttribute("aria-valuenow", step.progress);
      const bar = text("div", step.progress + " %", "progress-bar");
      bar.style.width = step.progress + "%";
      bar.classList.toggle("bg-success", step.state === "done");
      bar.classList.toggle("bg-danger", step.state === "failed");
      bar.classList.toggle("progress-bar-striped", step.state === "running");
      bar.classList.toggle("progress-bar-animated", step.state === "running");
      outer.append(bar);
      li.append(head, outer, text("div", step.detail, "small step-detail text-body-secondary"));
      return li;
    }));
  }

  // Copy an ssh line: the clipboard where the page may write it, else the line is selected.
  root.addEventListener("click", (event) => {
    const button = event.target.closest(".copy-ssh");
    if (!button) return;
    const done = () => { button.textContent = "Copied"; };
    const select = () => {
      const range = document.createRange();
      range.selectNodeContents(button.previousElementSibling);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    };
    if (navigator.clipboard) navigator.clipboard.writeText(button.dataset.copy).then(done, select);
    else select();
  });

  function showNodes(nodes, jumpKnownHosts) {
    const body = document.querySelector("#order-nodes tbody");
    if (!body || !nodes.length) return;
    body.replaceChildren(...nodes.map((node) => {
      const tr = document.createElement("tr");
      const connect = document.createElement("td");
      connect.className = "connect";
      if (node.ssh) {
        const copy = text("button", "Copy", "btn btn-sm btn-outline-secondary copy-ssh");
        copy.type = "button";
        copy.dataset.copy = node.ssh;
        connect.append(text("code", node.ssh, "ssh-line"), " ", copy);
      }
      const keys = document.createElement("td");
      keys.className = "host-keys";
      for (const key of node.host_keys || []) {
        const line = document.createElement("div");
        line.className = "small";
        line.append(text("code", key.fingerprint, "fingerprint"), ` (${key.type})`);
        keys.append(line);
      }
      if (!keys.childElementCount) keys.textContent = "—";
      tr.append(text("td", node.hostname), text("td", node.address || "—"), text("td", node.state), connect, keys);
      return tr;
    }));
    const known = document.getElementById("order-known-hosts");
    if (known) {
      const lines = nodes.flatMap((node) => (node.host_keys || []).map((key) => key.known_hosts));
      known.textContent = [jumpKnownHosts, ...lines].filter(Boolean).map((line) => `${line}\n`).join("");
    }
  }

  function showRay(ray) {
    const box = document.getElementById("order-ray");
    if (!box) return;
    box.classList.toggle("d-none", !ray || !ray.head);
    if (!ray || !ray.head) return;
    for (const field of box.querySelectorAll("[data-ray]")) field.textContent = ray[field.dataset.ray] || "";
    for (const button of box.querySelectorAll("[data-ray-copy]")) button.dataset.copy = ray[button.dataset.rayCopy] || "";
    for (const link of box.querySelectorAll("[data-ray-link]")) link.href = ray[link.dataset.rayLink] || "#";
  }

  // Between events the cost grows by the second at the quoted rate while the order runs.
  let ticking = null;
  function tick(order) {
    const cost = document.getElementById("order-cost");
    const base = parseFloat(order.cost);
    const since = Date.now();
    const running = order.ready_at && !order.ended_at;
    if (ticking) clearInterval(ticking);
    ticking = running ? setInterval(() => {
      const hours = (Date.now() - since) / 3600000;
      cost.textContent = (base + parseFloat(order.hourly_quote) * hours).toFixed(2);
    }, 1000) : null;
  }

  function showDelay(order) {
    const box = document.getElementById("order-delay");
    if (!box) return;
    box.classList.toggle("d-none", !order.delay);
    box.textContent = order.delay
      ? order.delay.message + " Since " + time(order.delay.since) + "; your order goes on by itself once it answers."
      : "";
  }

  function showLive() {
    if (refused) live.textContent = "not allowed";
    else if (current && current.delay) live.textContent = "delayed, retrying";
    else if (unansweredSince) live.textContent = "no answer from the portal since " + unansweredSince.toLocaleTimeString();
    else if (!socketOpen) live.textContent = "reconnecting…";
    else if (current && finished.has(current.state)) live.textContent = "connected (" + current.state + ")";
    else live.textContent = "connected";
  }

  function show(order) {
    current = order;
    heard = Date.now();
    unansweredSince = null;
    showDelay(order);
    const state = document.getElementById("order-state");
    state.textContent = order.state_label;
    state.dataset.state = order.state;
    document.getElementById("order-message").textContent = order.message;
    document.getElementById("order-cost").textContent = order.cost;
    tick(order);
    showSteps(order.steps);
    showNodes(order.handover.nodes || [], order.handover.jump_known_hosts);
    showRay(order.handover.ray);
    const open = document.getElementById("open-notebook");
    if (open) {
      open.classList.toggle("d-none", !order.handover.url);
      if (order.handover.url) open.href = order.handover.url;
      // Launched from the catalog: go straight into JupyterLab once it is up.
      if (order.handover.url && order.state === "active" && root.dataset.open) location.assign(order.handover.url);
    }
    document.getElementById("order-events").replaceChildren(...order.events.map((e) =>
      text("li", time(e.at) + " " + (e.from || "—") + " → " + e.to + " by " + e.actor + " " + e.detail)));
    // Actions on a running order (a Ray cluster's workers) show while it runs.
    for (const action of document.querySelectorAll(".when-active")) action.classList.toggle("d-none", order.state !== "active");
    const terminate = document.getElementById("terminate");
    if (terminate && ["terminated", "failed", "cancelled", "stopping"].includes(order.state)) terminate.disabled = true;
    showLive();
  }

  // The socket is quiet while the order works: ask the database how it stands.
  function poll() {
    const working = !current || !finished.has(current.state);
    if (refused || !working || Date.now() - heard < QUIET_MS) return;
    fetch(root.dataset.snapshotUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(show)
      .catch(() => {
        unansweredSince = unansweredSince || new Date();
        showLive();
      });
  }
  setInterval(poll, 3000);

  function connect(delay) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(scheme + "://" + location.host + root.dataset.wsPath);
    socket.onopen = () => { socketOpen = true; delay = 500; showLive(); };
    socket.onmessage = (event) => show(JSON.parse(event.data));
    socket.onclose = (event) => {
      socketOpen = false;
      if (event.code === 4401 || event.code === 4404) refused = true;
      showLive();
      if (refused) return;
      setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
    };
  }
  connect(500);
})();
