/* The inbox's small behaviours: keyboard, composer, clocks, live status and new-lead alerts.
   Everything else (lists, threads, actions) is server-rendered HTML swapped by htmx. */
(function () {
  "use strict";

  // --- segments: the same counting Twilio does (GSM-7 160/153, otherwise UCS-2 70/67) -----------
  var GSM7 = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ!\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var GSM7_EXT = "^{}\\[~]|€\f";

  function segmentInfo(text) {
    var units = 0, gsm = true;
    for (var ch of text) {
      if (GSM7.indexOf(ch) >= 0) units += 1;
      else if (GSM7_EXT.indexOf(ch) >= 0) units += 2;
      else { gsm = false; break; }
    }
    if (!gsm) units = Array.from(text).reduce(function (n, c) { return n + (c.codePointAt(0) > 0xffff ? 2 : 1); }, 0);
    var single = gsm ? 160 : 70, multi = gsm ? 153 : 67;
    var segments = units === 0 ? 1 : units <= single ? 1 : Math.ceil(units / multi);
    return { length: units, segments: segments, gsm: gsm };
  }

  function updateSegments(textarea) {
    var out = textarea.form && textarea.form.querySelector("[data-segments]");
    if (!out) return;
    var info = segmentInfo(textarea.value);
    out.textContent = info.length + " characters · " + info.segments + (info.segments === 1 ? " text" : " texts") +
      (info.gsm ? "" : " (emoji or special characters use more)");
    out.classList.toggle("is-long", info.segments > 1);
  }

  document.addEventListener("input", function (e) {
    if (e.target.matches("[data-reply]")) updateSegments(e.target);
  });

  // Enter sends, Shift+Enter adds a line.
  document.addEventListener("keydown", function (e) {
    if (e.target.matches("[data-reply]") && e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      if (e.target.value.trim()) e.target.form.requestSubmit();
    }
  });

  // Snippets go in at the cursor, then the agent edits before sending.
  document.addEventListener("click", function (e) {
    var chip = e.target.closest("[data-snippet]");
    if (!chip) return;
    var box = document.querySelector("[data-reply]");
    if (!box || box.disabled) return;
    var text = chip.getAttribute("data-snippet");
    var start = box.selectionStart || 0, end = box.selectionEnd || 0;
    box.value = box.value.slice(0, start) + text + box.value.slice(end);
    box.focus();
    box.selectionStart = box.selectionEnd = start + text.length;
    updateSegments(box);
  });

  // --- keyboard: j/k through the list, / to search, r to reply, Escape back to the list -------------
  function typing(e) {
    return e.target.closest("input, textarea, select, [contenteditable]") || e.metaKey || e.ctrlKey || e.altKey;
  }

  document.addEventListener("keydown", function (e) {
    if (typing(e)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    var links = Array.from(document.querySelectorAll("#conversation-list .conv-link"));
    var current = links.indexOf(document.activeElement);
    if (current < 0) current = links.findIndex(function (a) { return a.getAttribute("aria-current") === "true"; });
    if (e.key === "j" || e.key === "k") {
      var next = links[Math.min(links.length - 1, Math.max(0, current + (e.key === "j" ? 1 : -1)))];
      if (next) { next.focus(); e.preventDefault(); }
    } else if (e.key === "/") {
      var search = document.getElementById("inbox-q");
      if (search) { search.focus(); e.preventDefault(); }
    } else if (e.key === "r") {
      var reply = document.querySelector("[data-reply]");
      if (reply && !reply.disabled) { reply.focus(); e.preventDefault(); }
    }
  });

  // --- clocks: "needs reply 7 min" and "5 min ago" keep ticking without a reload -------------------
  function minutesSince(iso) {
    return Math.max(0, Math.floor((Date.now() - new Date(iso).getTime()) / 60000));
  }

  function duration(minutes) {
    if (minutes < 1) return "just now";
    if (minutes < 60) return minutes + " min";
    if (minutes < 48 * 60) return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
    return Math.floor(minutes / 1440) + " days";
  }

  function tick() {
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var m = minutesSince(el.getAttribute("data-since"));
      el.textContent = "Needs reply · " + duration(m);
      el.classList.toggle("is-late", m >= 10);
    });
    document.querySelectorAll("[data-ago]").forEach(function (el) {
      var m = minutesSince(el.getAttribute("datetime"));
      el.textContent = m < 1 ? "now" : duration(m) + " ago";
    });
  }
  setInterval(tick, 20000);

  // --- timeline: stay at the newest entry when the agent was already there -----------------------
  function scroller() { return document.querySelector("[data-timeline-scroll]"); }
  var stickToBottom = true;

  function scrollToBottom() {
    var s = scroller();
    if (s) s.scrollTop = s.scrollHeight;
  }

  document.addEventListener("scroll", function (e) {
    if (e.target.matches && e.target.matches("[data-timeline-scroll]")) {
      var s = e.target;
      stickToBottom = s.scrollHeight - s.scrollTop - s.clientHeight < 80;
    }
  }, true);

  // "Why was this routed to me?" stays open when a live update re-renders the timeline.
  var openWhy = new Set();
  document.addEventListener("toggle", function (e) {
    if (!e.target.matches || !e.target.matches("details.routing-why")) return;
    if (e.target.open) openWhy.add(e.target.id); else openWhy.delete(e.target.id);
  }, true);
  function reopenWhy() {
    openWhy.forEach(function (id) {
      var el = document.getElementById(id);
      if (el && !el.open) el.open = true;
    });
  }

  function afterSwap() {
    reopenWhy();
    tick();
    if (stickToBottom) scrollToBottom();
    var box = document.querySelector("[data-reply]");
    if (box) updateSegments(box);
    showAppointmentField();
  }

  document.addEventListener("htmx:wsAfterMessage", function () { placeRows(); afterSwap(); });
  document.addEventListener("htmx:afterSwap", afterSwap);
  // Feedback says its piece, then gets out of the way (errors stay a little longer).
  function fadeFeedback() {
    var el = document.getElementById("feedback");
    if (!el || !el.textContent.trim() || el.dataset.timed) return;
    el.dataset.timed = "1";
    setTimeout(function () { el.textContent = ""; }, el.classList.contains("is-error") ? 8000 : 4000);
  }
  document.addEventListener("htmx:afterSettle", fadeFeedback);

  // --- list rows from the websocket: each goes to its place by last activity, newest first -------
  function sortKey(li) { return [parseFloat(li.dataset.activity), parseInt(li.dataset.id, 10)]; }
  function newer(a, b) { return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]); }

  function placeRows() {
    var incoming = document.getElementById("row-upserts");
    var list = document.getElementById("conversation-list");
    if (!incoming || !list) return;
    var firstPage = list.dataset.page === "1", size = parseInt(list.dataset.pageSize, 10);
    Array.from(incoming.children).forEach(function (row) {
      var old = list.querySelector("#" + CSS.escape(row.id));
      if (old) old.remove();
      var key = sortKey(row);
      var next = Array.from(list.children).find(function (li) { return newer(key, sortKey(li)); });
      if (next && (firstPage || next !== list.firstElementChild)) list.insertBefore(row, next);
      else if (!next && (old || (firstPage && list.children.length < size))) list.appendChild(row);
      else row.remove();  // it belongs on another page of the list
    });
    while (firstPage && list.children.length > size) list.lastElementChild.remove();
    var empty = document.getElementById("list-empty");
    if (empty && list.children.length) empty.remove();
  }

  // The appointment time matters only for "appointment booked".
  function showAppointmentField() {
    document.querySelectorAll("[data-outcome]").forEach(function (select) {
      var field = select.form.querySelector("[data-appointment]");
      if (field) field.hidden = select.value !== "appointment";
    });
  }
  document.addEventListener("change", function (e) { if (e.target.matches("[data-outcome]")) showAppointmentField(); });

  // --- live status ------------------------------------------------------------------------------
  function liveStatus(state, text) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.setAttribute("data-state", state);
    el.textContent = text;
  }
  document.addEventListener("htmx:wsOpen", function () { liveStatus("live", "Live"); });
  document.addEventListener("htmx:wsClose", function (e) {
    var code = e.detail.event.code;
    if (code === 4401) {  // signed out (here or in another tab): the login page, then back here
      location.href = "/accounts/login/?next=" + encodeURIComponent(location.pathname + location.search);
    } else if (code === 4403) {
      liveStatus("offline", "No live updates for this account");
    } else {
      liveStatus("offline", "Reconnecting…");
      // The extension retries abnormal closes itself; a server going away cleanly (a restart or
      // a proxy) is retried here.
      if (code === 1000 || code === 1001) setTimeout(function () { e.detail.socketWrapper.reconnect(); }, 1000);
    }
  });

  // --- new-lead alerts: a toast (already in the page), a chime and a desktop notification ----------
  var audio = null;
  function chime() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      [880, 1320].forEach(function (freq, i) {
        var osc = audio.createOscillator(), gain = audio.createGain();
        var start = audio.currentTime + i * 0.16;
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, start);
        gain.gain.exponentialRampToValueAtTime(0.2, start + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.3);
        osc.connect(gain).connect(audio.destination);
        osc.start(start);
        osc.stop(start + 0.32);
      });
    } catch (err) { /* no audio device, or the browser wants a click first */ }
  }

  function announce(toast) {
    if (toast.dataset.announced) return;
    // A tab that hears of the lead through two of its groups (its pool and its own) says it once.
    var twin = Array.from(document.querySelectorAll("[data-toast][data-announced]")).find(function (t) { return t.dataset.href === toast.dataset.href; });
    if (twin) { toast.remove(); return; }
    toast.dataset.announced = "1";
    chime();
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      var n = new Notification(toast.dataset.notifyTitle, { body: toast.dataset.notifyBody, tag: toast.dataset.href });
      n.onclick = function () { window.focus(); location.href = toast.dataset.href; };
    }
    setTimeout(function () { toast.remove(); }, 15000);
  }

  new MutationObserver(function () {
    document.querySelectorAll("[data-toast]").forEach(announce);
  }).observe(document.documentElement, { childList: true, subtree: true });

  document.addEventListener("click", function (e) {
    if (e.target.matches("[data-toast-close]")) e.target.closest("[data-toast]").remove();
  });

  // Browsers only let a page ask for notifications from a click: the first click anywhere asks once.
  document.addEventListener("click", function askOnce() {
    document.removeEventListener("click", askOnce);
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
  });

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    scrollToBottom();
    showAppointmentField();
    var box = document.querySelector("[data-reply]");
    if (box) updateSegments(box);
  });
})();
