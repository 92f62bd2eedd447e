// The release this build is; kept beside package.json's "version" (bump both together).
export const VERSION = "0.2.0";
