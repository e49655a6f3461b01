// Rampart's pages: progressive enhancements only. Every form works without this file.
// Copy buttons (data-copy="<id of an input>"), downloads (data-download) and print.
(function () {
  "use strict";
  function valueOf(id) {
    var el = document.getElementById(id);
    return el ? (el.value !== undefined ? el.value : el.textContent) : "";
  }
  function wire(root) {
    root.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
      if (!navigator.clipboard) return;
      b.hidden = false;
      b.addEventListener("click", function () {
        navigator.clipboard.writeText(valueOf(b.dataset.copy)).then(function () {
          var label = b.textContent;
          b.textContent = document.documentElement.dataset.copied || "Copied";
          setTimeout(function () { b.textContent = label; }, 1500);
        }, function () {});
      });
    });
    root.querySelectorAll("button.download[data-download]").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () {
        var blob = new Blob([valueOf(b.dataset.download) + "\n"], { type: "text/plain" });
        var a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = b.dataset.filename || "download.txt";
        document.body.appendChild(a);
        a.click();
        setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
      });
    });
    root.querySelectorAll("button.print").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () { window.print(); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { wire(document); });
  } else {
    wire(document);
  }
})();
