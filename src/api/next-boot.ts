/**
 * Setting a device's next boot, checked: the one path the admin API and the dashboard share, so
 * both refuse the same requests with the same words.
 */
import type { Catalogue } from '../boot/catalogue.ts';
import { HttpError } from '../common/http-error.ts';
import type { Device, NextBoot, NextBootAction } from '../state/model.ts';
import type { DeviceStore } from '../state/store.ts';

export interface NextBootRequest {
  action: NextBootAction;
  profile?: string | undefined;
  reason?: string | undefined;
}

/**
 * Checks the request against the catalogue and stores it (`profile` without a name is normal
 * matching: the next boot is cleared). Throws HttpError 400 for a request that makes no sense and
 * 404 for an unknown device.
 */
export async function setNextBoot(store: DeviceStore, catalogue: Catalogue, id: string, request: NextBootRequest, defaultReason: string): Promise<{ device: Device; nextBoot: NextBoot | null }> {
  const { action, profile, reason } = request;
  if (action === 'once' && !profile) throw new HttpError(400, 'action once needs a profile');
  if ((action === 'local' || action === 'hold') && profile) throw new HttpError(400, `action ${action} takes no profile`);
  if (profile && !catalogue.profiles.has(profile)) throw new HttpError(400, `unknown profile ${profile}`);
  const nextBoot: NextBoot | null = action === 'profile' && !profile ? null : { action, ...(profile ? { profile } : {}), reason: reason || defaultReason, setAt: new Date().toISOString() };
  const device = await store.setNextBoot(id, nextBoot, 'api');
  if (!device) throw new HttpError(404, `unknown device ${id}`);
  return { device, nextBoot };
}

/** Back to normal matching. */
export async function clearNextBoot(store: DeviceStore, id: string): Promise<Device> {
  const device = await store.setNextBoot(id, null, 'api');
  if (!device) throw new HttpError(404, `unknown device ${id}`);
  return device;
}
