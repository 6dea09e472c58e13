// Login and reply reading. The Log in / Read button is disabled in the HTML until this script has
// decided which path the page takes, and said so. With WebAssembly the codename never leaves the
// browser: the Worker derives the login token (sent) and the reply key (kept in this page's
// memory only), downloads each reply and opens it as it arrives, and each attachment is offered
// as a download. Without it, the page says that the server will use the codename for this one
// page, and only then lets the form be sent.
import {
  alarm, api, clearAlarm, formatBytes, release, say, setCsrfToken, showToggle, startCrypto, strings,
} from "./common.js";

const t = strings();
const form = document.getElementById("codename-form");
const links = []; // object URLs of opened attachments, revoked when the page goes

async function main() {
  showToggle();
  if (!form) return;
  const { crypto, reason } = await startCrypto(form.dataset.orgPublicKey, form.dataset.manifest);
  if (!crypto) {
    say(reason === "no-wasm" ? t("noWasmRead") : t("noCryptoRead"));
    release(form); // the plain form: the server opens the replies for one page
    return;
  }
  form.dataset.reading = "browser";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    logIn(crypto).catch(() => alarm(t("failed")));
  });
  say(t("readyRead"));
  release(form);
}

async function logIn(crypto) {
  clearAlarm();
  const input = form.querySelector("#codename-input");
  let derived;
  try {
    derived = await crypto.call("derive", { codename: input.value });
  } catch {
    alarm(t("badCodename"));
    return;
  }
  const login = await api("POST", "/api/source/login", { login_token: derived.loginToken });
  if (!login.ok) { alarm(login.status === 401 ? t("unknownCodename") : t("failed")); return; }
  if (login.data?.csrf_token) setCsrfToken(login.data.csrf_token);
  input.value = "";
  form.hidden = true;
  document.getElementById("new-source")?.setAttribute("hidden", "");
  const heading = document.getElementById("page-heading");
  if (heading.dataset.repliesHeading) heading.textContent = heading.dataset.repliesHeading;
  document.title = `${heading.textContent} · ${document.title.split(" · ").pop()}`;
  const view = document.getElementById("replies-view");
  view.hidden = false;
  document.getElementById("check-again").onclick = () => {
    showReplies(crypto, derived.replySecretKey).catch(() => alarm(t("failed")));
  };
  await showReplies(crypto, derived.replySecretKey);
  view.focus();
}

async function showReplies(crypto, replySecretKey) {
  const box = document.getElementById("reply-list");
  clearAlarm();
  say(t("opening"));
  const list = await api("GET", "/api/source/replies");
  if (!list.ok) { alarm(t("failed")); return; }
  for (const url of links.splice(0)) URL.revokeObjectURL(url);
  const items = [];
  if (list.data.replies.length === 0) {
    items.push(Object.assign(document.createElement("p"), { textContent: t("noReplies") }));
  }
  const maxSize = Number(form.dataset.maxReply);
  for (const reply of list.data.replies) {
    const item = document.createElement("article");
    item.id = `reply-${reply.id}`;
    item.className = "replies";
    item.append(Object.assign(document.createElement("p"), {
      className: "meta", textContent: t("replyFrom", { date: reply.created }),
    }));
    try {
      if (reply.size > maxSize) throw Object.assign(new Error("too large"), { kind: "too_large" });
      const opened = await crypto.call("openReply", {
        url: `/api/source/replies/${reply.id}`, replySecretKey, maxSize,
      });
      item.dataset.peakHeld = String(opened.peakHeld);
      item.append(Object.assign(document.createElement("div"), {
        className: "reply-text", textContent: opened.message, // text, never HTML
      }));
      if (opened.attachments.length) item.append(attachmentList(opened.attachments));
      await api("POST", `/api/source/replies/${reply.id}/read`);
      item.append(deleteButton(reply.id, item));
    } catch (error) {
      item.append(Object.assign(document.createElement("p"), {
        className: "error", textContent: error.kind === "too_large" ? t("replyTooBig") : t("replyFailed"),
      }));
    }
    items.push(item);
  }
  box.replaceChildren(...items);
  document.getElementById("path-notice").hidden = true;
}

// Each attachment as a link that saves it: the browser's own download, named as the
// journalist named the file (browsers clean such names before they write a file).
function attachmentList(attachments) {
  const list = document.createElement("ul");
  list.className = "attachments";
  for (const { name, size, blob } of attachments) {
    const url = URL.createObjectURL(blob);
    links.push(url);
    const link = Object.assign(document.createElement("a"), {
      href: url, download: name, className: "button secondary",
      textContent: t("save", { name, size: formatBytes(size) }),
    });
    const li = document.createElement("li");
    li.append(link);
    list.append(li);
  }
  return list;
}

function deleteButton(replyId, item) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary";
  button.textContent = t("delete");
  button.onclick = async () => {
    const gone = await api("DELETE", `/api/source/replies/${replyId}`);
    if (gone.ok) {
      for (const a of item.querySelectorAll("a[download]")) URL.revokeObjectURL(a.href);
      item.replaceChildren(Object.assign(document.createElement("p"), { textContent: t("deleted") }));
    }
  };
  return button;
}

window.addEventListener("pagehide", () => { for (const url of links) URL.revokeObjectURL(url); });

main();
