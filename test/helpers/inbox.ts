import { InboxClient } from '../../broker/agency-client/inbox-client.js';
import type { TestGateway } from './gateway.js';

/** One InboxClient per demo agency of a listening test gateway, made on first use. */
export function inboxClients(g: TestGateway, url: string): (agency: string) => InboxClient {
  const clients = new Map<string, InboxClient>();
  return (agency: string) => {
    let c = clients.get(agency);
    if (!c) {
      const creds = g.creds(agency);
      c = new InboxClient({
        url,
        agency,
        signingKey: creds.signing,
        encryptionKey: creds.encryption,
        brokerId: g.config.brokerId,
      });
      clients.set(agency, c);
    }
    return c;
  };
}
