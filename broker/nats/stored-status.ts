/**
 * A stored message is data, never a status (issue 20).
 *
 * NATS marks its own protocol statuses (404 No Messages, 408, 409, 100 heartbeats)
 * with a status line in the header block (`NATS/1.0 404`) and an empty body;
 * nats.js treats every empty-body message with such a line as a status. But a
 * publisher can store a message with that very header in a stream (an operator's
 * slip, a bug, a reply-subject trick), and JetStream hands it back as it was
 * stored: through a consumer (a watch, a pull) nats.js then throws a NatsError
 * out of the iterator (the registry watch crashed every gateway) or drops it as
 * "no messages" (a pull consumer would see it redelivered forever), and a
 * direct get answers "not found".
 *
 * A status from the server is never a stored message: a stored message comes
 * from a consumer with a `$JS.ACK.` reply subject, or from a direct get with the
 * `Nats-Stream` and `Nats-Sequence` headers. For those, the status line is
 * cleared here, when the message's headers are first read, and kept in the header
 * {@link STORED_STATUS_HEADER}: the message reaches the broker's readers as the
 * data it is (an empty body), and each reader rejects it as junk (a finding).
 *
 * Installed once per process (it patches nats.js's message class), by connectNats.
 */
import { MsgImpl } from 'nats/lib/nats-base-client/msg.js';

export const STORED_STATUS_HEADER = 'Liaison-Stored-Status';

interface RawHeaders {
  _code: number;
  _description: string;
  get(k: string): string;
  set(k: string, v: string): void;
}
interface RawMsg {
  readonly reply: string;
  readonly data: Uint8Array;
}

let installed = false;

/** Whether a message, as nats.js decoded it, is a stored message that carried a status line (see above). */
export function isStoredStatus(reply: string, dataLength: number, h: { get(k: string): string } | undefined): boolean {
  if (dataLength !== 0 || !h) return false;
  return reply.startsWith('$JS.ACK.') || (h.get('Nats-Stream') !== '' && h.get('Nats-Sequence') !== '');
}

export function installStoredStatusGuard(): void {
  if (installed) return;
  const proto = MsgImpl.prototype as object;
  const desc = Object.getOwnPropertyDescriptor(proto, 'headers');
  if (!desc?.get) throw new Error('nats.js: Msg.headers is not a getter; the stored-status guard cannot be installed');
  // Called with .call(this) below: the message it reads is the getter's receiver.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const original = desc.get;
  Object.defineProperty(proto, 'headers', {
    configurable: true,
    enumerable: desc.enumerable ?? false,
    get(this: RawMsg) {
      const h = original.call(this) as RawHeaders | undefined;
      if (h && h._code >= 300 && isStoredStatus(this.reply ?? '', this.data.length, h)) {
        h.set(STORED_STATUS_HEADER, String(h._code));
        h._code = 0;
        h._description = '';
      }
      return h;
    },
  });
  installed = true;
}
