// Types of templates.mjs, for the TypeScript tests that compare a scaffold with the templates.
export declare const PLACEHOLDER_DATABASE_ID: string;
export declare function isPlaceholderId(id: string): boolean;
export declare function tenantFiles(names: {
  name: string;
  meshboxVersion: string;
  wranglerVersion: string;
  workersTypesVersion: string;
  typescriptVersion: string;
}): Record<string, string>;
