// Types of d1-bindings.mjs, for the TypeScript test of the reader.
export declare class BindingsError extends Error {}
export interface D1Binding {
  binding: string;
  databaseName: string | undefined;
  databaseId: string | undefined;
  migrationsDir: string;
}
export declare function d1BindingsOf(text: string, env?: string): D1Binding[];
