/**
 * Traffic Light Protocol 2.0 labels, from least to most restrictive: one
 * order for the broker's withdrawal policy and for the agency client that
 * builds withdrawals (broker/agency-client/withdrawal.ts).
 */
export type Tlp = 'CLEAR' | 'GREEN' | 'AMBER' | 'AMBER+STRICT' | 'RED';

export const TLP_ORDER: readonly Tlp[] = ['CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED'];

/** Whether `tlp` is a TLP 2.0 label. */
export const isTlp = (tlp: string): tlp is Tlp => (TLP_ORDER as readonly string[]).includes(tlp);

/** Whether `tlp` is at least as restrictive as `than`. */
export const atLeastAsStrict = (tlp: string, than: string) =>
  TLP_ORDER.indexOf(tlp as Tlp) >= TLP_ORDER.indexOf(than as Tlp);
