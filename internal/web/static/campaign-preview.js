// Consentry admin: the campaign editor's live preview. As the form is
// changed, and after a short pause, the draft is posted as the form would
// be (nothing is saved) and the message is shown as the chosen contact,
// or an example contact, would get it: the subject and plain text here,
// and the HTML in a sandboxed frame, into which the same draft is posted,
// so that the HTML comes with the preview's own policy. Errors, such as an
// unknown tag, go to the status line, which screen readers announce.
// Without this script the editor works as before: save, then preview on
// the campaign's page.
(function () {
  "use strict";
  var section = document.getElementById("live-preview");
  var form = document.getElementById("campaign-form");
  if (!section || !form || !window.fetch || !window.FormData || !window.AbortController) {
    return;
  }
  var contact = document.getElementById("preview-contact");
  var status = document.getElementById("preview-status");
  var subject = document.getElementById("preview-subject");
  var text = document.getElementById("preview-text");
  var frame = document.getElementById("preview-frame");
  var endpoint = section.getAttribute("data-endpoint");
  var language = form.elements.default_language ? form.elements.default_language.value : "";
  var timer = 0;
  var pending = null;
  var seq = 0;

  function say(message, isError) {
    if (status.textContent !== message) {
      status.textContent = message;
    }
    status.classList.toggle("error", isError);
  }

  // show posts the draft into a new frame that takes the old one's place:
  // a frame's first page adds nothing to the page's history.
  function show(body) {
    seq += 1;
    var next = frame.cloneNode(false);
    next.name = "preview-frame-" + seq;
    var post = document.createElement("form");
    post.method = "post";
    post.action = endpoint + "/html?n=" + seq;
    post.target = next.name;
    post.hidden = true;
    body.forEach(function (value, key) {
      var field = document.createElement("textarea");
      field.name = key;
      field.value = value;
      post.appendChild(field);
    });
    next.setAttribute("data-posted", post.action);
    frame.replaceWith(next);
    frame = next;
    document.body.appendChild(post);
    post.submit();
    post.remove();
  }

  function update() {
    var body = new URLSearchParams(new FormData(form));
    body.set("preview_language", language);
    body.set("preview_contact", contact.value);
    if (pending) {
      pending.abort();
    }
    var mine = new AbortController();
    pending = mine;
    fetch(endpoint, {method: "POST", body: body, credentials: "same-origin", signal: mine.signal,
      headers: {"Accept": "application/json"}})
      .then(function (res) {
        if ((res.headers.get("Content-Type") || "").indexOf("application/json") !== 0) {
          throw new Error("The preview is not available now (" + res.status + "); save the campaign to preview it on its page.");
        }
        return res.json();
      })
      .then(function (d) {
        if (pending !== mine) {
          return;
        }
        pending = null;
        if (d.error) {
          say(d.error, true);
          return;
        }
        subject.textContent = d.subject;
        text.textContent = d.text;
        show(body);
        say(d.note, false);
      })
      .catch(function (err) {
        if (err.name !== "AbortError" && pending === mine) {
          pending = null;
          say(err.message, true);
        }
      });
  }

  function later(e) {
    // The language being edited is the one the example contact reads.
    var m = /^(?:subject|html|text)_(\w+)$/.exec(e.target.name || "");
    if (m) {
      language = m[1];
    }
    clearTimeout(timer);
    timer = setTimeout(update, 400);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);
  contact.addEventListener("input", later);
  section.hidden = false;
  document.getElementById("editor").classList.add("with-preview");
  update();
}());
