import { makeClientAssertion } from '../../broker/agency-client/assertion.js';
import { InboxClient } from '../../broker/agency-client/inbox-client.js';
import type { TestGateway } from './gateway.js';

/** One InboxClient per demo agency of a listening test gateway, made on first use; `openPgp`: with the agency's OpenPGP key too. */
export function inboxClients(
  g: TestGateway,
  url: string,
  opts: { openPgp?: boolean } = {},
): (agency: string) => InboxClient {
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
        ...(opts.openPgp ? { openPgpKey: creds.openpgp?.private_armored } : {}),
        brokerId: g.config.brokerId,
      });
      clients.set(agency, c);
    }
    return c;
  };
}

type Answer = { status: number; json: Record<string, any> };

/** Requests as a demo agency (a fresh client assertion each) to a listening test gateway: POST a compact JWS, GET JSON. */
export function agencyRequests(g: TestGateway, url: string) {
  const bearer = async (agency: string) =>
    `Bearer ${await makeClientAssertion(agency, g.creds(agency).signing, g.config.brokerId)}`;
  return {
    postJose: async (agency: string, path: string, jws: string): Promise<Answer> => {
      const res = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { authorization: await bearer(agency), 'content-type': 'application/jose' },
        body: jws,
      });
      return { status: res.status, json: (await res.json()) as Record<string, any> };
    },
    get: async (agency: string, path: string): Promise<Answer> => {
      const res = await fetch(`${url}${path}`, { headers: { authorization: await bearer(agency) } });
      return { status: res.status, json: (await res.json()) as Record<string, any> };
    },
  };
}
