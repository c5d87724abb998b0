// Follows one order over its websocket: the server sends the whole snapshot on connect and on
// every change; the page redraws the steps, the servers and the cost from it.
(function () {
  const root = document.getElementById("order");
  if (!root) return;
  const finished = new Set(["active", "terminated", "failed", "cancelled"]);
  const live = document.getElementById("order-live");

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

  function showNodes(nodes) {
    const body = document.querySelector("#order-nodes tbody");
    if (!body || !nodes.length) return;
    body.replaceChildren(...nodes.map((node) => {
      const tr = document.createElement("tr");
      const connect = document.createElement("td");
      connect.append(text("code", node.ssh));
      tr.append(text("td", node.hostname), text("td", node.address || "—"), text("td", node.state), connect);
      return tr;
    }));
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

  function show(order) {
    const state = document.getElementById("order-state");
    state.textContent = order.state_label;
    state.dataset.state = order.state;
    document.getElementById("order-message").textContent = order.message;
    document.getElementById("order-cost").textContent = order.cost;
    tick(order);
    showSteps(order.steps);
    showNodes(order.handover.nodes || []);
    const open = document.getElementById("open-notebook");
    if (open) {
      open.classList.toggle("d-none", !order.handover.url);
      if (order.handover.url) open.href = order.handover.url;
      // Launched from the catalog: go straight into JupyterLab once it is up.
      if (order.handover.url && order.state === "active" && root.dataset.open) location.assign(order.handover.url);
    }
    document.getElementById("order-events").replaceChildren(...order.events.map((e) =>
      text("li", time(e.at) + " " + (e.from || "—") + " → " + e.to + " by " + e.actor + " " + e.detail)));
    const terminate = document.getElementById("terminate");
    if (terminate && ["terminated", "failed", "cancelled", "stopping"].includes(order.state)) terminate.disabled = true;
  }

  function connect(delay) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(scheme + "://" + location.host + root.dataset.wsPath);
    socket.onopen = () => { live.textContent = "connected"; delay = 500; };
    socket.onmessage = (event) => {
      const order = JSON.parse(event.data);
      show(order);
      live.textContent = finished.has(order.state) ? "connected (" + order.state + ")" : "connected";
    };
    socket.onclose = (event) => {
      if (event.code === 4401 || event.code === 4404) { live.textContent = "not allowed"; return; }
      live.textContent = "reconnecting…";
      setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
    };
  }
  connect(500);
})();
