/** A field's string value, or "" when it is unset or not a string. */
export function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
