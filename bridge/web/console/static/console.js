// Shows every <time> in the viewer's own time zone; the UTC value stays in the title (hover).
// Without this script the pages show UTC, which is also correct.
(function () {
  "use strict";
  function localise() {
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    var nodes = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var when = new Date(nodes[i].getAttribute("datetime"));
      if (isNaN(when.getTime())) { continue; }
      var offset = -when.getTimezoneOffset();
      var sign = offset >= 0 ? "+" : "-";
      offset = Math.abs(offset);
      nodes[i].textContent = when.getFullYear() + "-" + pad(when.getMonth() + 1) + "-" + pad(when.getDate()) +
        " " + pad(when.getHours()) + ":" + pad(when.getMinutes()) +
        " (UTC" + sign + pad(Math.floor(offset / 60)) + ":" + pad(offset % 60) + ")";
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", localise);
  } else {
    localise();
  }
})();
