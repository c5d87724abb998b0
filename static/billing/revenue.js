// Draws the operators' revenue chart: one stacked bar per product per day, from the data the
// page embeds with json_script (so no value passes through inline script).
(function () {
  const canvas = document.getElementById("revenue-chart");
  const source = document.getElementById("revenue-data");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  new Chart(canvas, {
    type: "bar",
    data: data,
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: { stacked: true },
        y: { stacked: true, beginAtZero: true, title: { display: true, text: "USD" } },
      },
      plugins: {
        legend: { position: "bottom" },
        tooltip: {
          callbacks: {
            label: (item) => item.dataset.label + ": " + item.parsed.y.toFixed(2),
          },
        },
      },
    },
  });
})();
