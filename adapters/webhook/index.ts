export {
  WebhookDeliverer,
  backoffMs,
  webhookConsumer,
  WEBHOOK_LEASE_KEY,
  type WebhookDelivererOptions,
} from './deliverer.js';
export {
  signWebhook,
  verifyWebhook,
  WebhookVerificationError,
  WEBHOOK_TYP,
  WEBHOOK_MEDIA_TYPE,
  type WebhookClaims,
} from './sign.js';
export { checkWebhookUrl, postWebhook, MAX_RESPONSE_BYTES } from './post.js';
export { webhookUrlRefusal } from './url-policy.js';
export { webhookTransport } from './transport.js';
