import type { Ctx } from "../step/contract.ts";

/**
 * The ctx a distributing strategy hands to the steps inside it: marked with its name, so that a
 * second distributing strategy inside (withDDP(withZeRO(s))) refuses to run instead of reducing
 * the gradients twice.
 */
export function enterStrategy(name: string, ctx: Ctx): Ctx {
  if (ctx.distributedBy !== undefined) {
    throw new Error(
      `plait: ${name}: nested inside ${ctx.distributedBy}; two strategies that both distribute do not compose (each would reduce the gradients): use one of them`,
    );
  }
  return { ...ctx, distributedBy: name };
}
