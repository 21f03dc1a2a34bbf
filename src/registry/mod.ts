/**
 * Installed plugins. For now: the plugin manifest (`plugin.yaml`) parser; the
 * on-disk registry arrives with the gateway.
 *
 * @module
 */
export { type Manifest, ManifestError, type ManifestExport, parseManifest } from "./parse_manifest.ts";
