/**
 * Names tried for `--on-conflict rename`: `report.pdf`, `report (1).pdf`, `report (2).pdf`, …
 * as browsers do for downloads; compound archive suffixes stay together
 * (`backup (1).tar.gz`). Pure.
 */

const COMPOUND = /\.tar\.(?:gz|bz2|xz|zst|lz|lzma|z)$/i;

/** Splits `name` into stem and extension (with its dot); a leading dot is part of the stem. */
export function splitExtension(name: string): { stem: string; ext: string } {
  const compound = COMPOUND.exec(name);
  if (compound !== null && compound.index > 0) return { stem: name.slice(0, compound.index), ext: name.slice(compound.index) };
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return { stem: name, ext: '' };
  return { stem: name.slice(0, dot), ext: name.slice(dot) };
}

/** The `n`-th candidate (0 = the name itself). Stays within 255 bytes by shortening the stem. */
export function conflictName(name: string, n: number): string {
  if (n === 0) return name;
  const { stem, ext } = splitExtension(name);
  const suffix = ` (${n})`;
  let s = stem;
  while (Buffer.byteLength(s + suffix + ext) > 255 && s.length > 1) s = Array.from(s).slice(0, -1).join('');
  return `${s}${suffix}${ext}`;
}
