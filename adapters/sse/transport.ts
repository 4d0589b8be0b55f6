import type { DeliveryTransport } from '../transport/contract.js';

/**
 * Pull and SSE: served on request, by the inbox routes (broker/http/routes/inbox.ts: a page of
 * broker/routing/inbox.ts's readInbox, or followInbox pumped through pump.ts); nothing runs in the background.
 */
export const inboxTransport: DeliveryTransport = {
  name: 'inbox',
  worker: () => null,
};
