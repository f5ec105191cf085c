/* lucidtrace list pages: filter form, clickable rows, keyboard search, chart legend.
   Loaded on every page; each part runs only where its elements exist. No inline handlers
   (the content security policy forbids them): everything is attached here. */
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", fn);
    } else {
      fn();
    }
  }

  /* Submitting a filter form drops empty fields, so links stay short and shareable. */
  function tidyForms() {
    document.querySelectorAll("form.filters").forEach(function (form) {
      form.addEventListener("submit", function () {
        form.querySelectorAll("input, select").forEach(function (field) {
          if (field.name && field.value === "") {
            field.disabled = true;
          }
        });
      });
      form.querySelectorAll("select.autosubmit").forEach(function (select) {
        select.addEventListener("change", function () {
          if (typeof form.requestSubmit === "function") {
            form.requestSubmit();
          } else {
            form.submit();
          }
        });
      });
    });
  }

  /* A click anywhere on a trace row opens the trace (links inside the row keep their own
     target; text selection does not navigate). */
  function clickableRows() {
    document.querySelectorAll("tr[data-href]").forEach(function (row) {
      row.addEventListener("click", function (event) {
        if (event.target.closest("a, button, input, select, summary")) {
          return;
        }
        if (window.getSelection && String(window.getSelection()).length > 0) {
          return;
        }
        var href = row.getAttribute("data-href");
        if (href && href.charAt(0) === "/" && href.charAt(1) !== "/") {
          if (event.ctrlKey || event.metaKey) {
            window.open(href, "_blank", "noopener");
          } else {
            window.location.assign(href);
          }
        }
      });
    });
  }

  /* "/" focuses the search box, as in most tools. */
  function searchShortcut() {
    var box = document.getElementById("search-box");
    if (!box) {
      return;
    }
    document.addEventListener("keydown", function (event) {
      var tag = (event.target && event.target.tagName) || "";
      if (event.key === "/" && !/INPUT|TEXTAREA|SELECT/.test(tag) && !event.target.isContentEditable) {
        event.preventDefault();
        box.focus();
        box.select();
      }
    });
  }

  /* Times: the server writes UTC; show the reader's local time on hover. */
  function localTimes() {
    document.querySelectorAll("time[datetime]").forEach(function (node) {
      var when = new Date(node.getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        node.title = when.toLocaleString() + " (" + node.title + ")";
      }
    });
  }

  /* Findings chart: the legend shows and hides series; hovering a legend entry highlights
     its line. Series data comes from the JSON block the server embedded. */
  function chartLegend() {
    var chart = document.getElementById("flag-chart");
    var dataNode = document.getElementById("findings-data");
    if (!chart || !dataNode) {
      return;
    }
    var data;
    try {
      data = JSON.parse(dataNode.textContent || "{}");
    } catch (error) {
      return;
    }
    var groups = Array.prototype.slice.call(chart.querySelectorAll("g.series"));
    function groupFor(check) {
      return groups.filter(function (group) {
        return group.getAttribute("data-check") === check;
      })[0];
    }
    document.querySelectorAll(".legend-item").forEach(function (item) {
      var check = item.getAttribute("data-check");
      var series = (data.series || []).filter(function (entry) {
        return entry.check === check;
      })[0];
      if (series) {
        var total = 0;
        var flagged = 0;
        series.points.forEach(function (point) {
          total += point.total;
          flagged += point.flagged;
        });
        item.title = flagged + " of " + total + " findings flagged in this window";
      }
      item.addEventListener("click", function () {
        var group = groupFor(check);
        var shown = item.getAttribute("aria-pressed") !== "false";
        item.setAttribute("aria-pressed", shown ? "false" : "true");
        if (group) {
          group.classList.toggle("hidden", shown);
        }
      });
      item.addEventListener("mouseenter", function () {
        groups.forEach(function (group) {
          group.classList.toggle("dimmed", group.getAttribute("data-check") !== check);
        });
      });
      item.addEventListener("mouseleave", function () {
        groups.forEach(function (group) {
          group.classList.remove("dimmed");
        });
      });
    });
  }

  onReady(function () {
    tidyForms();
    clickableRows();
    searchShortcut();
    localTimes();
    chartLegend();
  });
})();
