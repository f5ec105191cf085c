// The trace page: span tree (collapse, load more, details), "show all" on long texts.
// Trace content is inserted with textContent only: never innerHTML.
(function () {
  "use strict";

  var dataNode = document.getElementById("trace-data");
  if (!dataNode) {
    return;
  }
  var page = JSON.parse(dataNode.textContent || "{}");
  var KINDS = ["agent", "llm", "tool", "retriever", "chain", "embedding", "reasoning",
    "guardrail", "evaluator", "unknown"];

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function duration(ns) {
    if (ns === null || ns === undefined || ns < 0) {
      return "\u2013";
    }
    var seconds = ns / 1e9;
    if (seconds < 1e-3) {
      return Math.round(ns / 1000) + " \u00b5s";
    }
    if (seconds < 1) {
      return Math.round(seconds * 1000) + " ms";
    }
    if (seconds < 60) {
      return seconds.toFixed(2) + " s";
    }
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) {
      return minutes + " min " + Math.floor(seconds % 60) + " s";
    }
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("request failed: " + response.status);
        }
        return response.json();
      });
  }

  // ------------------------------------------------------------------ span tree

  var tree = document.querySelector(".span-tree");

  function rows() {
    return tree ? tree.querySelectorAll(".span-row[data-span-id]") : [];
  }

  // Hide every row below a collapsed row (deeper rows that follow it).
  function applyCollapse() {
    var hideBelow = null;
    rows().forEach(function (row) {
      var depth = Number(row.dataset.depth);
      if (hideBelow !== null && depth > hideBelow) {
        row.hidden = true;
        return;
      }
      hideBelow = null;
      row.hidden = false;
      if (row.classList.contains("collapsed")) {
        hideBelow = depth;
      }
    });
  }

  function buildRow(data) {
    var row = el("div", "span-row");
    row.setAttribute("role", "treeitem");
    row.tabIndex = 0;
    row.dataset.spanId = data.id;
    row.dataset.depth = String(data.depth);
    row.dataset.children = String(data.children);
    var label = el("span", "span-label d-" + Math.min(Number(data.depth) || 0, 24));
    if (data.children > 0) {
      var toggle = el("button", "toggle", "\u25be");
      toggle.type = "button";
      toggle.title = "collapse / expand";
      toggle.setAttribute("aria-expanded", "true");
      label.appendChild(toggle);
    } else {
      label.appendChild(el("span", "toggle-space"));
    }
    var kind = String(data.kind || "").toLowerCase();
    label.appendChild(el("span", "kind kind-" + (KINDS.indexOf(kind) >= 0 ? kind : "unknown"),
      data.kind));
    label.appendChild(document.createTextNode(" "));
    label.appendChild(el("span", "span-name", data.name));
    if (data.status === "error") {
      label.appendChild(document.createTextNode(" "));
      label.appendChild(el("span", "badge status-error", "error"));
    }
    row.appendChild(label);
    row.appendChild(el("span", "span-dur", duration(data.duration_ns)));
    var track = el("span", "span-track");
    var left = Math.max(0, Math.min(100, Number(data.left) || 0));
    var width = Math.max(0, Math.min(100, Number(data.width) || 0));
    track.appendChild(el("span", "span-bar wl-" + left + " ww-" + width + " bar-" +
      (data.status === "error" ? "error" : "ok")));
    row.appendChild(track);
    return row;
  }

  var loading = false;
  var observer = null;

  function loadMore(button) {
    var url = button.dataset.next;
    if (!url || loading) {
      return Promise.resolve();
    }
    loading = true;
    button.disabled = true;
    button.textContent = "Loading\u2026";
    return getJSON(url).then(function (chunk) {
      var holder = button.parentNode;
      chunk.rows.forEach(function (data) {
        tree.insertBefore(buildRow(data), holder);
      });
      var count = holder.querySelector(".span-count");
      var shown = rows().length;
      if (count) {
        count.textContent = shown.toLocaleString("en") + " of " +
          Number(chunk.total).toLocaleString("en") + " shown";
      }
      if (chunk.next) {
        button.dataset.next = chunk.next;
        button.disabled = false;
        button.textContent = "Load more spans";
      } else {
        delete button.dataset.next;
        button.remove();
      }
      applyCollapse();
      if (observer && chunk.next) {
        // Observe afresh: reports whether the end of the tree is still in view after the load.
        observer.unobserve(holder);
        observer.observe(holder);
      }
    }).catch(function (error) {
      button.disabled = false;
      button.textContent = "Load more spans (retry)";
      button.title = String(error);
    }).then(function () {
      loading = false;
    });
  }

  if (tree) {
    var more = tree.querySelector(".load-more");
    if (more && "IntersectionObserver" in window) {
      observer = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          var button = tree.querySelector(".load-more");
          if (entry.isIntersecting && button) {
            loadMore(button);
          }
        });
      }, { root: tree, rootMargin: "300px" });
      observer.observe(more.parentNode);
    }
    tree.addEventListener("click", function (event) {
      var target = event.target;
      var button = target.closest("button.load-more");
      if (button) {
        loadMore(button);
        return;
      }
      var toggle = target.closest("button.toggle");
      var row = target.closest(".span-row[data-span-id]");
      if (!row) {
        return;
      }
      if (toggle) {
        var collapsed = row.classList.toggle("collapsed");
        toggle.setAttribute("aria-expanded", collapsed ? "false" : "true");
        toggle.textContent = collapsed ? "\u25b8" : "\u25be";
        applyCollapse();
        return;
      }
      selectSpan(row.dataset.spanId);
    });
    tree.addEventListener("keydown", function (event) {
      var row = event.target.closest && event.target.closest(".span-row[data-span-id]");
      if (row && event.key === "Enter" && event.target === row) {
        selectSpan(row.dataset.spanId);
      }
    });
  }

  // ------------------------------------------------------------------ span details

  var detail = document.getElementById("span-detail");

  function fieldBlock(title, preview, fieldName, spanId, of) {
    var box = el("div", "lt-field");
    if (title) {
      box.appendChild(el("h4", "", title));
    }
    box.appendChild(el("pre", title ? "lt-text" : "lt-text kv-value", preview.text));
    if (preview.cut) {
      var note = el("p", "lt-cut");
      note.appendChild(el("span", "muted", "showing " + preview.text.length.toLocaleString("en") +
        " of " + Number(preview.length).toLocaleString("en") + " characters "));
      var button = el("button", "show-all", "Show all");
      button.type = "button";
      button.dataset.url = "/api/v1/ui/traces/" + encodeURIComponent(page.trace_id) +
        "/field?of=" + (of || "span") + "&span_id=" + encodeURIComponent(spanId) + "&name=" +
        encodeURIComponent(fieldName) + "&seq=0";
      note.appendChild(button);
      box.appendChild(note);
    }
    return box;
  }

  function fact(list, term, value) {
    if (value === null || value === undefined || value === "") {
      return;
    }
    var item = el("div");
    item.appendChild(el("dt", "", term));
    item.appendChild(el("dd", "", value));
    list.appendChild(item);
  }

  function renderDetail(span) {
    detail.replaceChildren();
    var head = el("h3", "span-detail-title", span.name);
    detail.appendChild(head);
    var facts = el("dl", "span-facts");
    fact(facts, "span id", span.id);
    fact(facts, "kind", span.kind);
    fact(facts, "status", span.status);
    fact(facts, "duration", duration(span.duration_ns));
    fact(facts, "model", span.model);
    fact(facts, "provider", span.provider);
    var tokens = [];
    if (span.input_tokens !== null) {
      tokens.push(span.input_tokens + " in");
    }
    if (span.output_tokens !== null) {
      tokens.push(span.output_tokens + " out");
    }
    if (span.reasoning_tokens !== null) {
      tokens.push(span.reasoning_tokens + " reasoning");
    }
    fact(facts, "tokens", tokens.join(" \u00b7 "));
    detail.appendChild(facts);
    if (span.status_message) {
      detail.appendChild(fieldBlock("Status message", span.status_message, "status_message",
        span.id));
    }
    if (span.input) {
      detail.appendChild(fieldBlock("Input", span.input, "input", span.id));
    }
    if (span.output) {
      detail.appendChild(fieldBlock("Output", span.output, "output", span.id));
    }
    if (span.events.length) {
      var events = el("details", "span-events");
      events.open = true;
      events.appendChild(el("summary", "", "Events (" + span.events.length + ")"));
      var list = el("ol", "event-list");
      span.events.forEach(function (ev) {
        var item = el("li");
        item.appendChild(el("strong", "", ev.name));
        item.appendChild(el("pre", "kv-value", ev.attributes ? ev.attributes.text : ""));
        list.appendChild(item);
      });
      events.appendChild(list);
      detail.appendChild(events);
    }
    var attrs = el("details", "span-attributes");
    attrs.appendChild(el("summary", "", "Attributes (" + span.attributes.length + ")"));
    var table = el("table", "kv");
    var body = el("tbody");
    span.attributes.forEach(function (pair) {
      var tr = el("tr");
      var th = el("th", "", pair.key);
      th.scope = "row";
      tr.appendChild(th);
      var td = el("td");
      td.appendChild(fieldBlock(null, pair.value, pair.key, span.id, "attribute"));
      tr.appendChild(td);
      body.appendChild(tr);
    });
    table.appendChild(body);
    attrs.appendChild(table);
    detail.appendChild(attrs);
  }

  function selectSpan(spanId) {
    if (!detail || !spanId) {
      return;
    }
    rows().forEach(function (row) {
      row.classList.toggle("selected", row.dataset.spanId === spanId);
    });
    detail.replaceChildren(el("p", "muted", "Loading span\u2026"));
    getJSON(page.span_url + encodeURIComponent(spanId)).then(renderDetail).catch(function (e) {
      detail.replaceChildren(el("p", "error", "Could not load the span: " + String(e)));
    });
  }

  // ------------------------------------------------------------------ long fields

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.show-all");
    if (button) {
      var box = button.closest(".lt-field");
      var pre = box && box.querySelector("pre.lt-text");
      if (!pre || !button.dataset.url) {
        return;
      }
      button.disabled = true;
      button.textContent = "Loading\u2026";
      getJSON(button.dataset.url).then(function (field) {
        pre.textContent = field.value === null ? "" : String(field.value);
        pre.classList.add("lt-full");
        var note = button.closest(".lt-cut");
        if (note) {
          note.remove();
        }
      }).catch(function (error) {
        button.disabled = false;
        button.textContent = "Show all (retry)";
        button.title = String(error);
      });
      return;
    }
    var stepSpan = event.target.closest && event.target.closest("button.step-span");
    if (stepSpan) {
      var row = tree && tree.querySelector(
        '.span-row[data-span-id="' + CSS.escape(stepSpan.dataset.spanId) + '"]');
      if (row) {
        row.hidden = false;
        row.scrollIntoView({ block: "center" });
      }
      selectSpan(stepSpan.dataset.spanId);
      if (detail) {
        detail.scrollIntoView({ block: "nearest" });
      }
    }
  });
})();
