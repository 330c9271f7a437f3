import { describe, expect, it } from "vitest";
import {
  mlp,
  Rng,
  type Step,
  setup,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  type Tree,
  train,
  valueAndGrad,
  withDDP,
  withDDP2,
  withDeepSpeed,
  withDP,
  withFSDP,
  withHorovod,
  withPrecision,
  withZeRO,
} from "../src/index.ts";

type B = { x: Tensor; y: Tensor };
const model = mlp([4, 3, 2]);
const step = valueAndGrad((p: Tree, b: B) => softmaxCrossEntropy(model.apply(p, b.x), b.y));

describe("setup: Lightning's strategy and precision names", () => {
  it("maps each strategy name to the transforms REFERENCE.md gives, around the precision", () => {
    const p = (s = step) => withPrecision(s, "bf16-true");
    const cases: [string, number, Step<B>][] = [
      ["single_device", 1, p()],
      ["auto", 1, p()],
      ["auto", 2, withDDP(p())],
      ["ddp", 2, withDDP(p())],
      ["ddp_spawn", 2, withDDP(p())],
      ["ddp_fork", 2, withDDP(p())],
      ["ddp_notebook", 2, withDDP(p())],
      ["ddp2", 2, withDDP2(p())],
      ["dp", 2, withDP(p())],
      ["fsdp", 2, withFSDP(p())],
      ["horovod", 2, withHorovod(p())],
      ["zero1", 2, withZeRO(p(), { stage: 1 })],
      ["zero3", 2, withZeRO(p(), { stage: 3 })],
      ["deepspeed", 2, withZeRO(p(), { stage: 2 })],
      ["deepspeed_stage_1", 2, withZeRO(p(), { stage: 1 })],
      ["deepspeed_stage_2", 2, withZeRO(p(), { stage: 2 })],
      ["deepspeed_stage_3", 2, withZeRO(p(), { stage: 3 })],
    ];
    for (const [strategy, devices, want] of cases) {
      const plan = setup({ strategy: strategy as never, precision: "bf16-true", devices });
      expect(plan.wrap(step).name, strategy).toBe(want.name);
      expect(plan.devices).toBe(devices);
    }
    expect(setup({ devices: 2 }).strategy).toBe("ddp");
    expect(setup().strategy).toBe("single_device");
  });

  it("deepspeed with 16-mixed gets DeepSpeed's fp16 block and scaler; ddp with 16-mixed gets torch's", async () => {
    const params = () => model.init(new Rng(0)) as unknown as Tree;
    const scalerOf = async (s: Step<B>) => {
      const state = await train(s, sgd({ lr: 0.1 })).init(params());
      return (state.transforms.amp as { kind: string } | undefined)?.kind ?? "none";
    };
    const ds = setup({ strategy: "deepspeed_stage_2", precision: "16-mixed" }).wrap(step);
    const ref = withDeepSpeed(step, {
      zero_optimization: { stage: 2 },
      gradient_clipping: 0,
      fp16: { enabled: true },
    }).step;
    expect(ds.name).toBe(ref.name);
    expect(await scalerOf(ds)).toBe("deepspeed");
    expect(await scalerOf(setup({ strategy: "ddp", precision: "16-mixed" }).wrap(step))).toBe("torch");
    const bf = setup({ strategy: "deepspeed_stage_3", precision: "bf16-mixed" }).wrap(step);
    expect(bf.name).toBe(
      withDeepSpeed(step, { zero_optimization: { stage: 3 }, gradient_clipping: 0, bf16: { enabled: true } }).step.name,
    );
    // Lightning writes gradient_clip_val (0 unless set) into the config: no DeepSpeed default clipping
    expect(bf.name).toBe("withZeRO(withAMP(step))");
    expect(await scalerOf(bf)).toBe("none");
  });

  it("takes Lightning's legacy precision values", () => {
    expect(setup({ precision: 16 }).precision).toBe("16-mixed");
    expect(setup({ precision: "bf16" }).precision).toBe("bf16-mixed");
    expect(setup({ precision: 64 }).precision).toBe("64-true");
    expect(setup({ precision: "32" }).precision).toBe("32-true");
    expect(setup({ precision: "bf16-true" }).precision).toBe("bf16-true");
  });

  it("unknown names list the known ones; impossible combinations say why", () => {
    expect(() => setup({ strategy: "ddp_sharded" as never })).toThrow(
      'plait: setup: unknown strategy "ddp_sharded"; known: auto, single_device, ddp, ddp_spawn, ddp_fork, ddp_notebook, dp, ddp2, fsdp, deepspeed, deepspeed_stage_1, deepspeed_stage_2, deepspeed_stage_3, horovod, zero1, zero2, zero3',
    );
    expect(() => setup({ precision: "transformer-engine" as never })).toThrow(
      'plait: setup: unknown precision "transformer-engine"; known: 64-true, 32-true, 16-mixed, bf16-mixed, 16-true, bf16-true, and Lightning\'s legacy 64, 32, 16 and "bf16"',
    );
    expect(() => setup({ strategy: "single_device", devices: 2 })).toThrow(
      'plait: setup: strategy "single_device" runs on one device, got devices 2; use "ddp" (or "auto") for 2 ranks',
    );
    expect(() => setup({ strategy: "deepspeed_stage_1", precision: "64-true" })).toThrow(
      'plait: setup: strategy "deepspeed_stage_1" does not take precision "64-true" (DeepSpeed has no fp64); use "32-true", "16-mixed", "bf16-mixed", "16-true" or "bf16-true"',
    );
    expect(() => setup({ devices: 0 })).toThrow("plait: setup: option devices must be an integer from 1 to");
    expect(() => setup({ strategy: "ddp", accelerator: "gpu" } as never)).toThrow(
      "plait: setup: unknown option accelerator; known: strategy, precision, devices",
    );
  });
});
