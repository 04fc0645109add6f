// Resumable upload by tus: the file goes up in chunks; when the connection drops, the upload waits for the
// network and goes on from the last byte the desk has (it asks with HEAD), instead of starting again.
(function () {
  "use strict";
  var form = document.getElementById("upload");
  if (!form || !window.tus) return;
  var status = document.getElementById("status");
  var bar = document.getElementById("bar");
  var resume = document.getElementById("resume");
  var send = document.getElementById("send");
  var upload = null;

  function say(text, percent) {
    status.textContent = text;
    if (percent !== undefined) {
      bar.value = percent;
      status.setAttribute("data-percent", String(Math.floor(percent)));
    }
  }

  function go() {
    resume.hidden = true;
    upload.findPreviousUploads().then(function (previous) {
      if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
      upload.start();
    });
  }

  window.addEventListener("online", function () {
    if (upload && !resume.hidden) { say("Back online: going on…"); go(); }
  });
  resume.addEventListener("click", go);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = document.getElementById("file").files[0];
    if (!file) return;
    if (file.size > parseInt(form.getAttribute("data-limit"), 10)) {
      say("This file is larger than your upload limit.");
      return;
    }
    send.disabled = true;
    upload = new window.tus.Upload(file, {
      endpoint: form.getAttribute("data-endpoint"),
      chunkSize: parseInt(form.getAttribute("data-chunk"), 10),
      retryDelays: [0, 1000, 3000, 5000],
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      headers: {"X-CSRF-Token": form.getAttribute("data-csrf")},
      metadata: {
        filename: file.name,
        title: document.getElementById("title").value,
        programme: document.getElementById("programme").value,
        lane: document.getElementById("lane").value
      },
      onProgress: function (sent, total) {
        var percent = total ? sent / total * 100 : 0;
        say("Sent " + (sent / 1048576).toFixed(1) + " of " + (total / 1048576).toFixed(1) + " MiB", percent);
      },
      onError: function (error) {
        var response = error.originalResponse;
        var code = response ? response.getStatus() : 0;
        if (code >= 400 && code < 500 && code !== 409 && code !== 423) {
          say("Refused: " + (response.getBody() || error.message));
          send.disabled = false;
          upload = null;
          form.setAttribute("data-state", "refused");
          return;
        }
        say("Connection lost at " + bar.value.toFixed(0) + "%. It goes on by itself when the network is back, or tap Resume.");
        form.setAttribute("data-state", "interrupted");
        resume.hidden = false;
      },
      onSuccess: function () {
        say("Sent. The desk has it; it is in the queue now.", 100);
        form.setAttribute("data-state", "done");
        send.disabled = false;
      }
    });
    form.setAttribute("data-state", "sending");
    go();
  });
})();
