/**
 * Uploads: tus 1.0 resumable uploads under `/uploads/` and plain streaming `PUT /files/{path}`.
 * See docs/uploads.md.
 */
export { registerUploadRoutes, type UploadRouteDeps, type UploadConfig, type UploadsHandle } from './register-upload-routes.ts';
export { createInProcessUploadLocker, type UploadLocker, type UploadLock, type AcquireOptions } from './upload-lock.ts';
export { TUS_VERSION, TUS_EXTENSIONS, CHECKSUM_ALGORITHMS } from './tus-headers.ts';
export { encodeUploadMetadata } from './upload-metadata.ts';
