import type { Tlp } from './tlp.js';

/** The notice type of a withdrawal or correction (broker/ingest/withdrawal-policy.ts). */
export const WITHDRAWAL_TYPE = 'withdrawal';

/** The notice header fields the pipeline relies on, after schema validation. */
export interface NoticeHeader {
  id: string;
  type: string;
  schema_version: string;
  created_at: string;
  expires_at?: string;
  operation: string;
  origin: { country: string; agency: string };
  addressees: string[];
  tlp: Tlp;
  priority: string;
  language: string;
  summary: string;
  references?: string[];
  body: Record<string, unknown>;
}
