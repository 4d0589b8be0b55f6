import { LiaisonError } from '../core/errors.js';
import type { NoticeValidator } from '../schemas/notice-validator.js';
import type { NoticeHeader } from '../core/notice.js';

/** Step 5: the notice matches the header schema and its type's body schema; the problem lists the failing JSON paths. */
export function validateNotice(notice: Record<string, unknown>, validator: NoticeValidator): NoticeHeader {
  const r = validator.validate(notice);
  if (!r.ok) throw new LiaisonError('schema-invalid', { errors: r.errors });
  return notice as unknown as NoticeHeader;
}
