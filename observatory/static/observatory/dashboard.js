// Dashboard behaviour: draw the charts of a page (again after every htmx swap), copy-once key buttons,
// confirmations and the organization switcher. Chart data comes from <script type="application/json">
// blocks written by the server (observatory/dashboard/charts.py); money arrives as decimal strings.
(function () {
  "use strict";

  const numberFormat = (digits) => new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const usd = numberFormat(2);
  const whole = numberFormat(0);
  const oneDecimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
  const formats = {
    usd: (v) => "$" + usd.format(v),
    ms: (v) => whole.format(v) + " ms",
    pct: (v) => oneDecimal.format(v) + "%",
    count: (v) => whole.format(v),
  };

  function drawCharts(root) {
    if (typeof Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      const source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      const spec = JSON.parse(source.textContent);
      const format = formats[spec.unit] || formats.count;
      const existing = Chart.getChart(canvas);
      if (existing) existing.destroy();
      const line = spec.type === "line";
      const log = spec.scale === "log";
      // A log axis has no 0: such points are left out. Its ticks are labelled at 1, 2 and 5 of each power of ten.
      const value = (v) => (v === null || (log && Number(v) <= 0) ? null : Number(v));
      const tick = log
        ? (v) => ([1, 2, 5].includes(Math.round(v / 10 ** Math.floor(Math.log10(v)))) ? format(v) : "")
        : (v) => format(v);
      new Chart(canvas, {
        type: spec.type,
        data: {
          labels: spec.labels,
          datasets: spec.datasets.map((d) => ({
            label: d.label,
            data: d.data.map(value),
            backgroundColor: line ? d.color + "1f" : d.color,
            borderColor: d.color,
            borderWidth: line ? 2 : 0,
            borderRadius: line ? 0 : 3,
            maxBarThickness: 28,
            pointRadius: line ? 2 : 0,
            pointHoverRadius: 4,
            tension: 0.25,
            spanGaps: true,
          })),
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          interaction: { mode: "index", intersect: false },
          plugins: {
            legend: { display: spec.datasets.length > 1, position: "bottom", labels: { boxWidth: 10, boxHeight: 10 } },
            tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${format(ctx.parsed.y)}` } },
          },
          scales: {
            x: { stacked: spec.stacked, grid: { display: false }, ticks: { maxTicksLimit: 12, color: "#6b7385" } },
            y: {
              type: log ? "logarithmic" : "linear",
              stacked: spec.stacked,
              beginAtZero: !log,
              grid: { color: "#eef0f5" },
              border: { display: false },
              title: { display: Boolean(spec.axis), text: spec.axis, color: "#6b7385" },
              ticks: { maxTicksLimit: log ? 12 : 6, autoSkip: !log, color: "#6b7385", callback: tick },
            },
          },
        },
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => drawCharts(document));

  // The page that shows a new key answers the POST that created it: put the settings page's address in the
  // history so a reload (or going back) is a plain GET, which shows the key no more.
  document.addEventListener("DOMContentLoaded", () => {
    const shown = document.querySelector("[data-settings-url]");
    if (shown) window.history.replaceState(null, "", shown.dataset.settingsUrl);
  });
  document.addEventListener("htmx:afterSettle", (event) => drawCharts(event.detail.target || document));

  // A range picked in place (htmx swaps the page body only) goes with the menu's links too: they get the
  // querystring the server wrote for the new body (organization, range, filters).
  document.addEventListener("htmx:afterSettle", (event) => {
    const source = (event.detail.target || document).querySelector("[data-carry]");
    if (!source) return;
    document.querySelectorAll(".sidebar a[href*='?']").forEach((link) => {
      link.setAttribute("href", link.pathname + source.dataset.carry);  // a path, as the server writes them
    });
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const text = document.getElementById(button.dataset.copy).textContent.trim();
    const done = () => { button.textContent = "Copied"; };
    if (navigator.clipboard) {
      navigator.clipboard.writeText(text).then(done, () => window.getSelection().selectAllChildren(document.getElementById(button.dataset.copy)));
    } else {
      window.getSelection().selectAllChildren(document.getElementById(button.dataset.copy));
    }
  });

  document.addEventListener("submit", (event) => {
    const message = event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  document.addEventListener("change", (event) => {
    if (event.target.matches("select[data-autosubmit]")) event.target.form.submit();
  });

  // A custom range picked from the dropdown closes it once the new body is in.
  document.addEventListener("htmx:beforeRequest", () => {
    document.querySelectorAll("details.custom[open]").forEach((d) => d.removeAttribute("open"));
  });
})();
