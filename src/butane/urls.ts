/**
 * Which URLs Ignition accepts as a source: http(s), tftp, gs, s3 (with a non-empty versionId
 * when one is given), arn for S3 objects, and well-formed data URLs.
 */
const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/s;

export function validateUrl(url: string): string | undefined {
  // eslint-disable-next-line no-control-regex -- control characters are what makes a URL unparsable
  if (/[\u0000-\u001f\u007f]/.test(url) || /%(?![0-9a-fA-F]{2})/.test(url)) return 'unable to parse url';
  const m = SCHEME.exec(url);
  const scheme = m?.[1]?.toLowerCase() ?? '';
  const rest = m?.[2] ?? '';
  switch (scheme) {
    case 'http':
    case 'https':
    case 'tftp':
    case 'gs':
      return undefined;
    case 's3':
    case 'arn': {
      if (scheme === 'arn' && !/^aws[a-zA-Z-]*:s3:[^:]*:[^:]*:.+\/.+/.test(rest)) return 'invalid S3 ARN format';
      const query = rest.includes('?') ? new URLSearchParams(rest.slice(rest.indexOf('?') + 1)) : undefined;
      if (query?.has('versionId') && query.get('versionId') === '') return 'invalid S3 object VersionId';
      return undefined;
    }
    case 'data':
      return /^[^,]*,/s.test(rest) ? undefined : 'missing data prefix';
    default:
      return 'invalid url scheme';
  }
}
