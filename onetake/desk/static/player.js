// HLS ladders play through hls.js (Media Source Extensions), with a menu to pin a rendition; browsers that play
// HLS themselves (Safari) get the playlist directly.
(function () {
  "use strict";
  document.querySelectorAll("video[data-hls]").forEach(function (video) {
    var url = video.getAttribute("data-hls");
    var menu = video.parentElement.querySelector("select.levels");
    if (window.Hls && window.Hls.isSupported()) {
      var hls = new window.Hls();
      hls.loadSource(url);
      hls.attachMedia(video);
      hls.on(window.Hls.Events.MANIFEST_PARSED, function () {
        hls.levels.forEach(function (level, index) {
          var option = document.createElement("option");
          option.value = String(index);
          option.textContent = level.height + "p " + Math.round(level.bitrate / 1000) + " kb/s";
          menu.appendChild(option);
        });
        video.setAttribute("data-levels", String(hls.levels.length));
      });
      hls.on(window.Hls.Events.LEVEL_SWITCHED, function (event, data) {
        video.setAttribute("data-level", String(data.level));
      });
      menu.addEventListener("change", function () { hls.currentLevel = parseInt(menu.value, 10); });
      video.hls = hls;
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = url;
      menu.hidden = true;
    }
  });
})();
