import { LiaisonError } from '../core/errors.js';

export interface FreshnessRules {
  clockSkewSeconds: number;
  maxNoticeAgeSeconds: number;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/i;

/**
 * Step 4: the notice's created_at is within the accepted window. A notice older
 * than maxNoticeAgeSeconds could be a replay beyond the duplicate window, so it is
 * refused; the JetStream duplicate window (>= age + skew, enforced by the config
 * loader) catches every replay inside the window.
 */
export function checkFreshness(notice: Record<string, unknown>, now: Date, rules: FreshnessRules): void {
  const created = notice.created_at;
  const t = typeof created === 'string' && RFC3339.test(created) ? Date.parse(created) : NaN;
  if (Number.isNaN(t)) {
    throw new LiaisonError('schema-invalid', {
      errors: [{ path: '/created_at', message: 'must be an RFC 3339 date-time' }],
    });
  }
  const ageMs = now.getTime() - t;
  if (ageMs > rules.maxNoticeAgeSeconds * 1000) {
    throw new LiaisonError('replay', { publicDetail: `created_at is more than ${rules.maxNoticeAgeSeconds} s old` });
  }
  if (-ageMs > rules.clockSkewSeconds * 1000) {
    throw new LiaisonError('clock-skew', {
      publicDetail: `created_at is more than ${rules.clockSkewSeconds} s in the future`,
    });
  }
  if (typeof notice.expires_at === 'string' && Date.parse(notice.expires_at) <= now.getTime()) {
    throw new LiaisonError('replay', { publicDetail: 'the notice has already expired' });
  }
}
