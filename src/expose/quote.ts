const MAX_QUOTED = 64;

/**
 * A value quoted for an error message: JSON quoting (so control characters and quotes cannot forge
 * log lines) and cut short, because the value came from outside and may be huge.
 */
export function quote(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}… (${text.length} characters)` : text;
}
