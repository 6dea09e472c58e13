// Resumable upload of a sealed envelope (tipline/server/uploads.py is the other side), streamed:
// the header and the envelope's exact size create the upload before any payload exists; then
// the rest is pulled from its source (the crypto Worker, sealing as it goes) one chunk at a time
// and sent at explicit offsets. The page keeps only bytes the server has not acknowledged yet, so
// its memory is a few chunks whatever the file's size. A dropped connection asks the server where
// it stands and goes on from there: everything before that offset is acknowledged and was
// dropped, everything after it is still held, and no acknowledged byte is sent twice.
import { api, setCsrfToken } from "./common.js";

const RETRIES = 8;

function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

// The envelope's bytes after its header, read in order from a Blob (an envelope sealed whole).
export function blobSource(envelope, header) {
  let pos = header.length;
  return async (max) => {
    const piece = new Uint8Array(await envelope.slice(pos, pos + max).arrayBuffer());
    pos += piece.length;
    return piece;
  };
}

export class Upload {
  // header: the envelope's header bytes; size: the whole envelope's size; pull(max): a promise
  // of the next bytes after those already pulled, 1 to max of them. Or, instead of size and
  // pull, envelope: a Blob of the whole envelope.
  // recycle(bytes), if given, gets each pulled piece back once the server has acknowledged it.
  // newSource ({loginToken, replyPublicKey}, base64) is given for a first-time source: the
  // server stores the source only when this upload finishes, and logs the session in then.
  constructor({
    envelope, header, size, pull, recycle, manifestVersion, chunkSize, onProgress, signal,
    newSource,
  }) {
    Object.assign(this, {
      header, recycle, manifestVersion, chunkSize, onProgress, signal, newSource,
    });
    this.size = envelope ? envelope.size : size;
    this.pull = envelope ? blobSource(envelope, header) : pull;
    this.id = null;
    this.pieces = []; // [{start, bytes}] not yet acknowledged, in order
    this.end = header.length; // the offset up to which bytes were pulled
    this.held = 0; // bytes in this.pieces (and a chunk joined from several of them)
    this.peakHeld = 0;
    this.filling = Promise.resolve();
  }

  // Drop what the server acknowledged (everything before `offset`).
  release(offset) {
    while (this.pieces.length) {
      const first = this.pieces[0];
      const stop = first.start + first.bytes.length;
      if (stop > offset) {
        if (first.start < offset) {
          first.bytes = first.bytes.subarray(offset - first.start); // still held until dropped
          first.start = offset;
        }
        return;
      }
      this.held -= first.whole.length; // all of it was held until now, trimmed or not
      this.pieces.shift();
      this.recycle?.(first.whole);
    }
  }

  // Pull until the bytes up to `target` are here; one pull at a time, in order.
  fill(target) {
    this.filling = this.filling.then(async () => {
      while (this.end < target) {
        const piece = await this.pull(Math.min(target - this.end, this.chunkSize));
        if (!(piece instanceof Uint8Array) || piece.length === 0) {
          throw new Error("the envelope ended before its announced size");
        }
        this.pieces.push({ start: this.end, bytes: piece, whole: piece });
        this.end += piece.length;
        this.held += piece.length;
        this.peakHeld = Math.max(this.peakHeld, this.held);
      }
    });
    this.filling.catch(() => {}); // raised where it is awaited
    return this.filling;
  }

  // The bytes [offset, stop): one piece's view when they are in one piece, else a joined copy.
  async bytes(offset, stop) {
    this.release(offset);
    await this.fill(stop);
    this.release(offset);
    const first = this.pieces[0];
    if (!first || first.start !== offset) throw new Error("the upload lost its place");
    if (first.start + first.bytes.length >= stop) return first.bytes.subarray(0, stop - offset);
    const joined = new Uint8Array(stop - offset);
    for (const { start, bytes } of this.pieces) {
      if (start >= stop) break;
      joined.set(bytes.subarray(0, Math.min(bytes.length, stop - start)), start - offset);
    }
    this.peakHeld = Math.max(this.peakHeld, this.held + joined.length);
    return joined;
  }

  async run() {
    const created = await api("POST", "/api/source/uploads", {
      manifest_version: this.manifestVersion,
      header: bytesToBase64(this.header),
      size: this.size,
      ...(this.newSource ? {
        login_token: this.newSource.loginToken, reply_public_key: this.newSource.replyPublicKey,
      } : {}),
    }, { signal: this.signal });
    if (!created.ok) throw new UploadError(created.status, created.data?.error);
    this.id = created.data.id;
    let offset = created.data.received;
    let failures = 0;
    while (offset < this.size) {
      this.onProgress?.(offset, this.size, failures > 0);
      const end = Math.min(offset + this.chunkSize, this.size);
      const body = await this.bytes(offset, end);
      // The next chunk is sealed while this one travels: at most two chunks are held.
      this.fill(Math.min(end + this.chunkSize, this.size));
      let reply;
      try {
        // Sent as a Blob: Chromium hands its bytes to the browser process at once, where an
        // ArrayBuffer body stays in the page until garbage collection, growing with the file.
        reply = await api("PUT", `/api/source/uploads/${this.id}?offset=${offset}`,
          new Blob([body]), {
            headers: { "Content-Type": "application/octet-stream" }, signal: this.signal,
          });
      } catch (error) {
        if (this.signal?.aborted) throw error;
        reply = null; // the circuit dropped: ask where the server stands
      }
      if (reply && reply.ok) { offset = reply.data.received; failures = 0; continue; }
      if (reply && reply.status !== 409 && reply.status < 500) {
        throw new UploadError(reply.status, reply.data?.error);
      }
      if (++failures > RETRIES) throw new UploadError(reply ? reply.status : 0, reply?.data?.error);
      await sleep(Math.min(500 * 2 ** failures, 15000));
      const status = await api("GET", `/api/source/uploads/${this.id}`, undefined,
        { signal: this.signal }).catch(() => null);
      if (status && status.ok) offset = status.data.received;
    }
    this.release(this.size);
    this.onProgress?.(this.size, this.size, false);
    const done = await this.finish();
    // A first-time source is logged in now, in a new session with a new CSRF token.
    if (done.data?.csrf_token) setCsrfToken(done.data.csrf_token);
    return done.data;
  }

  // Store the whole upload. Retried when the circuit drops or the server is briefly unable
  // (5xx): the server's finish is idempotent, so when the answer to a finish that stored the
  // tip was lost, the next one says it is stored (200) instead of the page saying it failed.
  async finish() {
    for (let failures = 0; ; failures++) {
      let done;
      try {
        done = await api("POST", `/api/source/uploads/${this.id}/finish`, undefined,
          { signal: this.signal });
      } catch (error) {
        if (this.signal?.aborted) throw error;
        done = null; // the circuit dropped: the server may or may not have stored it
      }
      if (done && (done.ok || done.status < 500)) {
        if (!done.ok) throw new UploadError(done.status, done.data?.error);
        return done;
      }
      if (failures >= RETRIES) throw new UploadError(done ? done.status : 0, done?.data?.error);
      await this.pause(Math.min(500 * 2 ** (failures + 1), 15000));
    }
  }

  pause(ms) { return sleep(ms); }

  async cancel() {
    if (this.id) await api("DELETE", `/api/source/uploads/${this.id}`).catch(() => null);
  }
}

export class UploadError extends Error {
  constructor(status, message) {
    super(message || `upload failed (${status})`);
    this.status = status;
  }
}

export function bytesToBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
