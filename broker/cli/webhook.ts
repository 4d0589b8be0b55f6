/**
 * Operator commands for webhook delivery (over NATS, like `audit export`: the
 * hub operator's tools, not an agency's):
 *
 *   liaison webhook deadletters [--nats URL] [--agency ID] [--json]
 *   liaison webhook redeliver   [--nats URL] (--seq N ... | --agency ID | --all)
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../core/usage-error.js';
import { createLogger } from '../core/logger.js';
import { connectNats, type NatsBus } from '../nats/connection.js';
import { cliNatsAuth, cliNatsUrl } from '../nats/creds-files.js';
import { listDeadLetters, requestRedelivery } from '../routing/deadletter.js';
import type { Io } from './liaison.js';

async function withBus<T>(nats: string | undefined, fn: (bus: NatsBus) => Promise<T>): Promise<T> {
  const url = cliNatsUrl(nats);
  if (!url)
    throw new UsageError('needs --nats URL (or NATS_URL, or a data dir whose local nats-server wrote nats/url)');
  const bus = await connectNats({
    servers: url,
    name: 'liaison-webhook-cli',
    publishTimeoutMs: 5000,
    logger: createLogger('silent'),
    auth: cliNatsAuth(),
  });
  try {
    return await fn(bus);
  } finally {
    await bus.close();
  }
}

export async function webhookDeadletters(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      nats: { type: 'string' },
      agency: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const list = await withBus(values.nats, (bus) =>
    listDeadLetters(bus, {
      ...(values.agency ? { agency: values.agency } : {}),
      ...(values.limit ? { limit: Number(values.limit) } : {}),
    }),
  );
  if (values.json) io.out(JSON.stringify({ deadletters: list }, null, 2) + '\n');
  else if (list.length === 0) io.out('no dead letters\n');
  else
    for (const d of list)
      io.out(
        `#${d.seq}  ${d.agency}  notice ${d.notice_id} (${d.type}, ${d.operation}, from ${d.origin.agency})  cursor ${d.cursor}  ${d.attempts} tries, last: ${d.last_error}  at ${d.failed_at}\n`,
      );
  return 0;
}

export async function webhookRedeliver(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      nats: { type: 'string' },
      seq: { type: 'string', multiple: true },
      agency: { type: 'string' },
      all: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const seqs = (values.seq ?? []).map((s) => {
    if (!/^\d{1,15}$/.test(s))
      throw new UsageError('--seq must be a dead-letter sequence (see liaison webhook deadletters)');
    return Number(s);
  });
  if (seqs.length === 0 && !values.agency && !values.all) throw new UsageError('needs --seq N, --agency ID or --all');
  const done = await withBus(values.nats, async (bus) => {
    const targets = seqs.length
      ? seqs
      : (await listDeadLetters(bus, values.agency ? { agency: values.agency } : {})).map((d) => d.seq);
    const out = [];
    for (const seq of targets) out.push(await requestRedelivery(bus, seq));
    return out;
  });
  if (values.json)
    io.out(
      JSON.stringify(
        { redelivering: done.map((d) => ({ seq: d.seq, agency: d.agency, notice_id: d.notice_id })) },
        null,
        2,
      ) + '\n',
    );
  else
    io.out(
      done.length
        ? done.map((d) => `#${d.seq} ${d.agency} notice ${d.notice_id}: queued for redelivery\n`).join('')
        : 'nothing to redeliver\n',
    );
  return 0;
}

export const webhookCommands = { 'webhook deadletters': webhookDeadletters, 'webhook redeliver': webhookRedeliver };
