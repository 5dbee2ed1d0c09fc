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

  function start() {
    setUpCopyButtons();
    setUpSelectOnFocus();
    setUpFlashes();
    setUpEnterClicks();
    setUpDocumentSync();
    setUpSelectAll();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
