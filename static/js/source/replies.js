// Login and reply reading. With WebAssembly the codename never leaves the browser: the Worker
// derives the login token (sent) and the reply key (kept in this page's memory only) and opens
// each reply here. Without it, the form posts the codename and the server opens the replies
// for that one page.
import { api, refreshCsrf, say, startCrypto, strings } from "./common.js";

const t = strings();
const form = document.getElementById("codename-form");

async function main() {
  if (!form) return;
  const { crypto, reason } = await startCrypto(
    document.querySelector("[data-org-public-key]")?.dataset.orgPublicKey || "");
  if (!crypto) {
    if (reason === "no-wasm") say(t("noWasmRead"));
    return;
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    readReplies(crypto).catch(() => say(t("failed"), true));
  });
}

async function readReplies(crypto) {
  const input = form.querySelector("#codename-input");
  let derived;
  try {
    derived = await crypto.call("derive", { codename: input.value });
  } catch {
    say(t("badCodename"), true);
    return;
  }
  input.value = "";
  const login = await api("POST", "/api/source/login", { login_token: derived.loginToken });
  if (!login.ok) { say(t("unknownCodename"), true); return; }
  await refreshCsrf();
  const list = await fetch("/api/source/replies", { cache: "no-store" }).then((r) => r.json());
  const box = document.getElementById("replies-box") || document.getElementById("reply-list");
  box.replaceChildren();
  form.hidden = true;
  if (list.replies.length === 0) {
    const p = document.createElement("p");
    p.textContent = t("noReplies");
    box.append(p);
  }
  for (const reply of list.replies) {
    const item = document.createElement("article");
    item.id = `reply-${reply.id}`;
    const meta = document.createElement("p");
    meta.className = "meta";
    meta.textContent = t("replyFrom", { date: reply.created });
    item.append(meta);
    const blob = await fetch(`/api/source/replies/${reply.id}`, { cache: "no-store" });
    try {
      const opened = await crypto.call("open", {
        envelope: await blob.arrayBuffer(), replySecretKey: derived.replySecretKey,
      });
      const body = document.createElement("div");
      body.className = "reply-text";
      body.textContent = opened.message; // text, never HTML
      item.append(body);
      await api("POST", `/api/source/replies/${reply.id}/read`);
      item.append(deleteButton(reply.id, item));
    } catch {
      const p = document.createElement("p");
      p.className = "error";
      p.textContent = t("replyFailed");
      item.append(p);
    }
    box.append(item);
  }
  box.hidden = false;
  box.focus();
}

function deleteButton(replyId, item) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary";
  button.textContent = t("delete");
  button.onclick = async () => {
    const gone = await api("DELETE", `/api/source/replies/${replyId}`);
    if (gone.ok) item.replaceChildren(Object.assign(document.createElement("p"),
      { textContent: t("deleted") }));
  };
  return button;
}

main();
