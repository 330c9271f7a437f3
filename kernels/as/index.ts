// Entry of the AssemblyScript kernel module: every kernel file re-exported here.
export * from "./elementwise";
export * from "./copy";
