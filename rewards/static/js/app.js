/* Referral Rewards: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  var FEEDBACK_MS = 2000;

  function announce(text) {
    var region = document.getElementById("live-status");
    if (!region) {
      return;
    }
    region.textContent = "";
    // A fresh text node after a tick makes screen readers read a repeated message again.
    window.setTimeout(function () {
      region.textContent = text;
    }, 50);
  }

  function legacyCopy(input) {
    var ok = false;
    input.focus();
    input.select();
    if (typeof input.setSelectionRange === "function") {
      input.setSelectionRange(0, input.value.length);
    }
    try {
      ok = document.execCommand("copy");
    } catch (error) {
      ok = false;
    }
    return ok;
  }

  function copyText(input) {
    var text = input.value;
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(
        function () {
          return true;
        },
        function () {
          return legacyCopy(input);
        }
      );
    }
    return Promise.resolve(legacyCopy(input));
  }

  function showFeedback(button, copied) {
    if (!button.dataset.label) {
      button.dataset.label = button.textContent;
    }
    if (button.copyTimer) {
      window.clearTimeout(button.copyTimer);
    }
    button.textContent = copied ? "Copied" : "Press Ctrl+C to copy";
    button.classList.toggle("is-done", copied);
    announce(copied ? "Link copied to the clipboard." : "Select the link and copy it.");
    button.copyTimer = window.setTimeout(function () {
      button.textContent = button.dataset.label;
      button.classList.remove("is-done");
      button.copyTimer = null;
    }, FEEDBACK_MS);
  }

  function setUpCopyButtons() {
    var buttons = document.querySelectorAll("[data-copy-target]");
    Array.prototype.forEach.call(buttons, function (button) {
      var input = document.getElementById(button.getAttribute("data-copy-target"));
      if (!input) {
        return;
      }
      button.addEventListener("click", function (event) {
        event.preventDefault();
        copyText(input).then(function (copied) {
          showFeedback(button, copied);
        });
      });
    });
  }

  function setUpSelectOnFocus() {
    var inputs = document.querySelectorAll("input[data-select-on-focus]");
    Array.prototype.forEach.call(inputs, function (input) {
      input.addEventListener("focus", function () {
        input.select();
      });
      input.addEventListener("click", function () {
        input.select();
      });
    });
  }

  function setUpFlashes() {
    var flashes = document.querySelectorAll(".flash");
    Array.prototype.forEach.call(flashes, function (flash) {
      var close = document.createElement("button");
      close.type = "button";
      close.className = "flash-close";
      close.setAttribute("aria-label", "Dismiss message");
      close.textContent = "\u00d7";
      close.addEventListener("click", function () {
        var list = flash.parentNode;
        flash.parentNode.removeChild(flash);
        if (list && !list.children.length && list.parentNode) {
          list.parentNode.removeChild(list);
        }
      });
      flash.appendChild(close);
    });
  }


  /* Policy editor (admin/policy.html). */

  // Policy editor: Enter in a preview field previews rather than submitting the form's
  // first button (Save draft).
  function setUpEnterClicks() {
    var inputs = document.querySelectorAll("[data-enter-clicks]");
    Array.prototype.forEach.call(inputs, function (input) {
      var button = document.getElementById(input.getAttribute("data-enter-clicks"));
      if (!button) {
        return;
      }
      input.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && !event.isComposing) {
          event.preventDefault();
          button.click();
        }
      });
    });
  }

  // Policy editor: the replay form sends the editor's current text, saved or not.
  function setUpDocumentSync() {
    var forms = document.querySelectorAll("form[data-sync-document]");
    Array.prototype.forEach.call(forms, function (form) {
      var source = document.getElementById(form.getAttribute("data-sync-document"));
      var target = form.querySelector("input[name=document]");
      if (!source || !target) {
        return;
      }
      form.addEventListener("submit", function () {
        target.value = source.value;
      });
    });
  }


  /* Payout queue (coordinator/payouts.html): "select all" for the batch form. */

  function setUpSelectAll() {
    var boxes = document.querySelectorAll("input[data-select-all]");
    Array.prototype.forEach.call(boxes, function (all) {
      var form = all.form;
      if (!form) {
        return;
      }
      var name = all.getAttribute("data-select-all");
      var rows = form.querySelectorAll('input[type="checkbox"][name="' + name + '"]');
      if (!rows.length) {
        return;
      }
      var wrap = all.closest("[data-select-all-wrap]");
      if (wrap) {
        wrap.hidden = false;
      }

      function sync() {
        var checked = 0;
        Array.prototype.forEach.call(rows, function (row) {
          if (row.checked) {
            checked += 1;
          }
        });
        all.checked = checked === rows.length;
        all.indeterminate = checked > 0 && checked < rows.length;
      }

      all.addEventListener("change", function () {
        Array.prototype.forEach.call(rows, function (row) {
          row.checked = all.checked;
        });
        all.indeterminate = false;
      });
      Array.prototype.forEach.call(rows, function (row) {
        row.addEventListener("change", sync);
      });
      sync();
    });
  }

  /* Marketing dashboard (marketing/dashboard.html): the charts, drawn with the vendored
     Chart.js from the page's JSON data block. The same numbers are in the table under each
     chart, open until its chart is drawn; without Chart.js the tables are the page. */

  var CHART_COLORS = ["#1d5fa8", "#d97706", "#2e7d4f", "#9b1c1c", "#6b4fbb", "#0f766e"];
  var CHART_LOCALE = "en";

  function dayLabel(iso) {
    var day = new Date(iso + "T00:00:00Z");
    return day.toLocaleDateString(CHART_LOCALE, { month: "short", day: "numeric", timeZone: "UTC" });
  }

  function countLabel(value) {
    return Number(value).toLocaleString(CHART_LOCALE);
  }

  // Amounts arrive in minor units of one currency; the axis shows whole units.
  function moneyFormat(money) {
    var code = money.currency.toUpperCase();
    var full;
    var whole;
    try {
      full = new Intl.NumberFormat(CHART_LOCALE, {
        style: "currency", currency: code,
        minimumFractionDigits: money.exponent, maximumFractionDigits: money.exponent
      });
      whole = new Intl.NumberFormat(CHART_LOCALE, {
        style: "currency", currency: code, maximumFractionDigits: 0, minimumFractionDigits: 0
      });
    } catch (error) {
      full = whole = { format: function (value) { return countLabel(value) + " " + code; } };
    }
    return {
      scale: Math.pow(10, money.exponent),
      full: function (value) { return full.format(value); },
      whole: function (value) { return whole.format(value); }
    };
  }

  function chartConfig(spec, reduceMotion) {
    var horizontal = Boolean(spec.horizontal);
    var money = spec.money ? moneyFormat(spec.money) : null;
    var line = spec.type === "line";
    var many = spec.labels.length > 31;
    var datasets = spec.datasets.map(function (set, index) {
      var color = CHART_COLORS[index % CHART_COLORS.length];
      return {
        label: set.label,
        data: set.data.map(function (value) { return money ? value / money.scale : value; }),
        borderColor: color,
        backgroundColor: color,
        borderWidth: line ? 2 : 0,
        borderRadius: line ? 0 : 3,
        pointRadius: line ? (many ? 0 : 2) : undefined,
        pointHoverRadius: line ? 4 : undefined,
        maxBarThickness: 28
      };
    });
    var valueTicks = { precision: 0 };
    if (money) {
      valueTicks.callback = function (value) { return money.whole(value); };
    }
    var valueAxis = { beginAtZero: true, ticks: valueTicks, grid: { color: "#eef1f5" } };
    var labelAxis = { grid: { display: false }, ticks: { autoSkip: true, maxRotation: 0 } };
    return {
      type: spec.type,
      data: { labels: spec.dates ? spec.labels.map(dayLabel) : spec.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: reduceMotion ? false : { duration: 400 },
        indexAxis: horizontal ? "y" : "x",
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { display: datasets.length > 1, position: "bottom" },
          tooltip: {
            callbacks: {
              label: function (context) {
                var value = horizontal ? context.parsed.x : context.parsed.y;
                return context.dataset.label + ": " +
                  (money ? money.full(value) : countLabel(value));
              }
            }
          }
        },
        scales: horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis }
      }
    };
  }

  function drawCharts(block) {
    var specs;
    try {
      specs = JSON.parse(block.textContent);
    } catch (error) {
      return;
    }
    var Chart = window.Chart;
    var reduceMotion = window.matchMedia &&
      window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    var styles = window.getComputedStyle(document.body);
    Chart.defaults.font.family = styles.fontFamily;
    Chart.defaults.color = "#616e7c";
    var canvases = document.querySelectorAll("canvas[data-chart]");
    Array.prototype.forEach.call(canvases, function (canvas) {
      var spec = specs[canvas.getAttribute("data-chart")];
      var box = canvas.parentNode;
      if (!spec) {
        return;
      }
      box.hidden = false;
      try {
        new Chart(canvas, chartConfig(spec, reduceMotion));
      } catch (error) {
        box.hidden = true;
        return;
      }
      canvas.setAttribute("data-drawn", "true");
    });
    // Once a section's charts are drawn, its numbers stay one click away.
    var tables = document.querySelectorAll("details[data-chart-numbers]");
    Array.prototype.forEach.call(tables, function (details) {
      var section = details.closest("section") || document;
      if (!section.querySelector("canvas[data-chart]:not([data-drawn])")) {
        details.open = false;
      }
    });
  }

  function setUpCharts() {
    var block = document.getElementById("dashboard-charts");
    if (!block) {
      return;
    }
    if (window.Chart) {
      drawCharts(block);
      return;
    }
    // Chart.js is deferred after this file: draw once the page has loaded it.
    window.addEventListener("load", function () {
      if (window.Chart) {
        drawCharts(block);
      }
    });
  }

  function start() {
    setUpCopyButtons();
    setUpSelectOnFocus();
    setUpFlashes();
    setUpEnterClicks();
    setUpDocumentSync();
    setUpSelectAll();
    setUpCharts();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
