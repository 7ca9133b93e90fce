// New DICOM UIDs under the 2.25 root (ITU-T X.667): a random UUID written as one decimal integer,
// so no organisation root needs registering and collisions are as unlikely as for UUIDs.
import { randomUUID } from 'node:crypto';

export function newUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString()}`;
}
