// The usage chart (tokens per day by model) and the playground, which streams a chat reply
// from the gateway with the key typed here (kept in this tab's sessionStorage only).
(function () {
  const canvas = document.getElementById("usage-chart");
  const source = document.getElementById("usage-data");
  if (canvas && source && typeof Chart !== "undefined") {
    new Chart(canvas, {
      type: "bar",
      data: JSON.parse(source.textContent),
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, title: { display: true, text: "tokens" } } },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  const form = document.getElementById("playground");
  if (!form) return;
  const key = document.getElementById("pg-key");
  const output = document.getElementById("pg-output");
  key.value = key.value || sessionStorage.getItem("storefront-playground-key") || "";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem("storefront-playground-key", key.value);
    output.textContent = "";
    const response = await fetch(form.dataset.base + "/chat/completions", {
      method: "POST",
      headers: { "Authorization": "Bearer " + key.value, "Content-Type": "application/json" },
      body: JSON.stringify({
        model: document.getElementById("pg-model").value, stream: true, max_tokens: 128,
        messages: [{ role: "user", content: document.getElementById("pg-prompt").value }],
      }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      output.textContent = "Error " + response.status + ": " + ((body.error || {}).message || response.statusText);
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const events = buffer.split("\n\n");
      buffer = events.pop();
      for (const line of events) {
        const data = line.replace(/^data: /, "");
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        for (const choice of chunk.choices || []) output.textContent += (choice.delta || {}).content || "";
      }
    }
    output.dataset.done = "1";
  });
})();
