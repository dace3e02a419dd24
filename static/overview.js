// The overview's chart, drawn from the day-by-day table the page already shows (oldest first).
(function () {
  function draw() {
    var canvas = document.getElementById("overview-chart");
    if (!canvas || typeof Chart === "undefined") return;
    var rows = Array.prototype.slice.call(document.querySelectorAll('[data-table="trend"] tbody tr')).reverse();
    var labels = [], series = {"mobile-installs": [], "mobile-ftds": [], "web-registrations": [], "web-ftds": []};
    rows.forEach(function (row) {
      labels.push(row.querySelector("[data-day]").dataset.day);
      Object.keys(series).forEach(function (key) {
        series[key].push(Number(row.querySelector('[data-series="' + key + '"]').textContent.replace(/[^0-9.-]/g, "")));
      });
    });
    var colors = {"mobile-installs": "#8250df", "mobile-ftds": "#c297ff", "web-registrations": "#1a7f37", "web-ftds": "#4ac26b"};
    new Chart(canvas, {
      type: "bar",
      data: {labels: labels, datasets: Object.keys(series).map(function (key) {
        return {label: key.replace("-", " "), data: series[key], backgroundColor: colors[key], stack: key.split("-")[0]};
      })},
      options: {responsive: true, maintainAspectRatio: false, animation: false,
                scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true, ticks: {precision: 0}}}}
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
