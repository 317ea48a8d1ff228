/**
 * `/boot.ipxe`: the fixed script a machine chains first. It asks iPXE for everything it knows
 * about the machine and chains to `/ipxe` with it. Binary settings (MAC, UUID, IP) are
 * formatted by iPXE itself; host names go through `:uristring`; SMBIOS strings, which can hold
 * anything, go as hex (`:hexraw`) because `:uristring` leaves `&` and `+` alone. If the server cannot be reached it keeps trying rather than dropping the
 * machine at a dead prompt.
 */

/** Query parameters and the iPXE expansions that fill them. */
export const BOOTSTRAP_PARAMS: readonly (readonly [string, string])[] = [
  ['mac', '${mac:hexhyp}'],
  ['uuid', '${uuid}'],
  // SMBIOS strings as hex: iPXE's :uristring does not escape & and + (see identity.ts HEX_FIELDS).
  ['serial_hex', '${serial:hexraw}'],
  ['hostname', '${hostname:uristring}'],
  ['domain', '${domain:uristring}'],
  ['arch', '${buildarch:uristring}'],
  ['platform', '${platform:uristring}'],
  ['manufacturer_hex', '${manufacturer:hexraw}'],
  ['product_hex', '${product:hexraw}'],
  ['asset_hex', '${asset:hexraw}'],
  ['ip', '${ip}'],
];

export function renderBootstrap(baseUrl: string, retryDelay = 10): string {
  const query = BOOTSTRAP_PARAMS.map(([name, expansion]) => `${name}=${expansion}`).join('&');
  return [
    '#!ipxe',
    '# bootdepot bootstrap: identify this machine and fetch its own script',
    ':bootdepot-chain',
    `chain --autofree ${baseUrl}/ipxe?${query} || goto bootdepot-failed`,
    // A script that ends without booting (e.g. one that hands back to the firmware) lands here.
    'exit',
    ':bootdepot-failed',
    `echo bootdepot: could not fetch the script for this machine from ${baseUrl}; trying again in ${retryDelay} seconds`,
    `sleep ${retryDelay}`,
    'goto bootdepot-chain',
    '',
  ].join('\n');
}
