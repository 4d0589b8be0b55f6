import type { JetStreamManager, SeqMsgRequest, StoredMsg } from 'nats';

/**
 * STREAM.MSG.GET's `next_by_subj` (nats-server >= 2.9): the message at `seq`
 * or the first after it on the subject. nats.js types it for direct gets only
 * (and does not export that type); as a SeqMsgRequest with one more field the
 * stored-message get takes it without a cast.
 */
interface NextBySubjectRequest extends SeqMsgRequest {
  next_by_subj: string;
}

/** The first message on `subject` at or after `seq` in `stream`; a 404 (isNotFound) when there is none. */
export function getNextMessage(
  jsm: JetStreamManager,
  stream: string,
  seq: number,
  subject: string,
): Promise<StoredMsg> {
  const query: NextBySubjectRequest = { seq, next_by_subj: subject };
  return jsm.streams.getMessage(stream, query);
}
