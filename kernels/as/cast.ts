// dtype casts and the AMP unscale step, one file per concern; re-exported as one group.
export * from "./cast_bf16";
export * from "./cast_f16";
export * from "./cast_f64";
export * from "./unscale";
export * from "./round_half";
