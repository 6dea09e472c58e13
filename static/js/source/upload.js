// Resumable upload of a sealed envelope (tipline/server/uploads.py is the other side).
// The header goes with the request that creates the upload; the rest follows in chunks at
// explicit offsets. A dropped connection asks the server where it stands and goes on from
// there, so no acknowledged byte is sent twice.
import { api } from "./common.js";

const RETRIES = 8;

function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

export class Upload {
  // envelope: a Blob of the whole envelope; header: its header bytes.
  constructor({ envelope, header, manifestVersion, chunkSize, onProgress, signal }) {
    Object.assign(this, { envelope, header, manifestVersion, chunkSize, onProgress, signal });
    this.id = null;
  }

  async run() {
    const created = await api("POST", "/api/source/uploads", {
      manifest_version: this.manifestVersion,
      header: bytesToBase64(this.header),
      size: this.envelope.size,
    }, { signal: this.signal });
    if (!created.ok) throw new UploadError(created.status, created.data?.error);
    this.id = created.data.id;
    let offset = created.data.received;
    let failures = 0;
    while (offset < this.envelope.size) {
      this.onProgress?.(offset, this.envelope.size, failures > 0);
      const end = Math.min(offset + this.chunkSize, this.envelope.size);
      let reply;
      try {
        reply = await api("PUT", `/api/source/uploads/${this.id}?offset=${offset}`,
          this.envelope.slice(offset, end), {
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
    this.onProgress?.(this.envelope.size, this.envelope.size, false);
    const done = await api("POST", `/api/source/uploads/${this.id}/finish`, undefined,
      { signal: this.signal });
    if (!done.ok) throw new UploadError(done.status, done.data?.error);
    return done.data;
  }

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
