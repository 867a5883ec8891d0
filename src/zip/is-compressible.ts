/**
 * Whether deflating a member is worth the CPU (`?compress=1`). Already-compressed formats —
 * media, archives, office containers (which are zips) — are stored: deflate would spend CPU to
 * gain nothing or grow them. Tiny files are stored too (the deflate block overhead eats the gain).
 */
const ALREADY_COMPRESSED = new Set([
  // archives and compressed streams
  '7z', 'apk', 'br', 'bz2', 'cab', 'deb', 'dmg', 'gz', 'jar', 'lz', 'lz4', 'lzma', 'rar', 'rpm', 'tbz', 'tgz', 'txz', 'war', 'whl', 'xz', 'z', 'zip', 'zipx', 'zst', 'zstd', 'crx', 'xpi', 'nupkg', 'squashfs',
  // images
  'avif', 'gif', 'heic', 'heif', 'jp2', 'jpeg', 'jpg', 'jxl', 'png', 'webp',
  // audio and video
  'aac', 'flac', 'm4a', 'm4v', 'mkv', 'mov', 'mp3', 'mp4', 'mpeg', 'mpg', 'oga', 'ogg', 'ogv', 'opus', 'webm', 'wma', 'wmv', 'avi', '3gp',
  // office/containers that are zips or compressed inside
  'docx', 'xlsx', 'pptx', 'odt', 'ods', 'odp', 'epub', 'pdf', 'woff', 'woff2', 'ipa', 'msi',
]);

/** Members below this size are stored even with `?compress=1`. */
export const MIN_DEFLATE_BYTES = 64;

export function isCompressible(name: string, size: number): boolean {
  if (size < MIN_DEFLATE_BYTES) return false;
  const base = name.slice(name.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  if (dot <= 0) return true;
  return !ALREADY_COMPRESSED.has(base.slice(dot + 1).toLowerCase());
}
