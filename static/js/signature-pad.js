/* The handwriting pad island (templates/seals/pad.html): signature_pad on the canvas, sized for the
   screen's pixel density, and 提交 posting the drawing as a PNG with the page's CSRF token.

   The server answers with HTML whose root has an id: #pad (the finished page) replaces the pad, and
   #pad-message (why the drawing was refused) replaces the message line, so the person can try again
   without losing what they drew. */
(function () {
  "use strict";

  // Pen widths in CSS pixels: a finger's signature is scaled down into a 40 × 20 mm box, and strokes
  // much thinner than this would print faint.
  var PEN = { penColor: "#111111", minWidth: 1.4, maxWidth: 3.6, throttle: 8 };

  function swapIn(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    var fresh = template.content.firstElementChild;
    var current = fresh && fresh.id && document.getElementById(fresh.id);
    if (!current) return false;
    current.replaceWith(fresh);
    return true;
  }

  function init(root) {
    if (root.dataset.padReady) return;
    root.dataset.padReady = "1";
    var canvas = root.querySelector("canvas");
    var clearButton = root.querySelector("[data-pad-clear]");
    var submitButton = root.querySelector("[data-pad-submit]");
    var pad = new window.SignaturePad(canvas, PEN);

    function say(text) {
      var line = document.getElementById("pad-message");
      line.textContent = text;
      line.hidden = !text;
    }

    // The canvas's backing store must match its CSS size × devicePixelRatio, or strokes are blurred
    // and land away from the finger. Resizing clears a canvas, so the strokes are redrawn from
    // signature_pad's own record (a phone turned to landscape keeps the drawing, rescaled).
    var drawn = { width: 0, height: 0 };
    function fit() {
      var ratio = Math.max(window.devicePixelRatio || 1, 1);
      var width = canvas.offsetWidth;
      var height = canvas.offsetHeight;
      if (!width || (width === drawn.width && height === drawn.height)) return;  // the URL bar moved
      var strokes = pad.toData();
      var sx = drawn.width ? width / drawn.width : 1;
      var sy = drawn.height ? height / drawn.height : 1;
      canvas.width = width * ratio;
      canvas.height = height * ratio;
      canvas.getContext("2d").scale(ratio, ratio);
      pad.clear();
      pad.fromData(strokes.map(function (group) {
        return Object.assign({}, group, {
          points: group.points.map(function (p) { return Object.assign({}, p, { x: p.x * sx, y: p.y * sy }); })
        });
      }));
      drawn = { width: width, height: height };
    }
    window.addEventListener("resize", fit);
    fit();

    pad.addEventListener("beginStroke", function () {
      root.classList.add("has-ink");
      say("");
    });
    clearButton.addEventListener("click", function () {
      pad.clear();
      root.classList.remove("has-ink");
      say("");
    });

    submitButton.addEventListener("click", function () {
      if (pad.isEmpty()) {
        say("请先在方框内签名，再点击提交。");
        return;
      }
      submitButton.disabled = clearButton.disabled = true;
      submitButton.textContent = "正在提交…";
      canvas.toBlob(function (blob) {
        var body = new FormData();
        body.append("image", blob, "signature.png");
        fetch(root.dataset.uploadUrl, {
          method: "POST",
          body: body,
          credentials: "same-origin",
          headers: { "X-CSRFToken": root.dataset.csrfToken }
        })
          .then(function (response) { return response.text(); })
          .then(function (html) {
            if (!swapIn(html)) say("提交失败，请稍后重试。");
          })
          .catch(function () { say("网络异常，签名未提交，请检查网络后重试。"); })
          .finally(function () {
            submitButton.disabled = clearButton.disabled = false;
            submitButton.textContent = "提交";
          });
      }, "image/png");
    });
  }

  function initAll(scope) {
    (scope.querySelectorAll ? scope : document).querySelectorAll("[data-signature-pad]").forEach(init);
  }
  // A normal page load, and content htmx inserts later (htmx 4 names that event htmx:after:process).
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { initAll(document); });
  } else {
    initAll(document);
  }
  document.addEventListener("htmx:after:process", function (event) { initAll(event.target); });
})();
