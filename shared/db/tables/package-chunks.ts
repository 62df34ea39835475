/** Ciphertext of a package in ~1 MB pieces, so both writing and reading stream. */
export interface PackageChunksTable {
  package_id: string;
  seq: number;
  data: Buffer;
}
