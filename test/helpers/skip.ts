/**
 * A test that needs something the machine may lack (root for a tmpfs, a binary) skips with a
 * visible reason on a developer's machine; under CI=true the same gap is a failure, so CI can
 * never pass by skipping.
 */
export function skipOrFail(t: { skip: (message?: string) => void }, reason: string): void {
  if (process.env.CI === 'true') throw new Error(`CI=true, so this cannot be skipped: ${reason}`);
  t.skip(reason);
}
