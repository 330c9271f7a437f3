// plait's MpiComm peer of bench/mpi/allreduce.c, for bench/allreduce.ts: in-place f32 sum
// allReduce over all processes (`mpirun -np 2 node allreduce-plait.mjs <samples> <budget> <sizes>…`),
// timed the same way (warm-up, then `samples` loops of calls from a byte budget, each loop's time
// the slowest rank's); rank 0 prints {"sizes":[…],"seconds":[…],"wrong":n} as one JSON line.
import { configure, MpiComm, zeros } from "plait";

configure({ threads: 1 });
const [samples, budget, ...sizes] = process.argv.slice(2).map(Number);
const comm = MpiComm.world();
const { rank, worldSize } = comm;
const seconds = [];
let wrong = 0;
const times = zeros([samples], { dtype: "f64" });
for (const bytes of sizes) {
  const x = zeros([bytes / 4]);
  x.data().fill(rank + 1);
  await comm.allReduce(x, "sum");
  const want = (worldSize * (worldSize + 1)) / 2;
  for (const v of x.data()) wrong += v !== want ? 1 : 0;
  x.data().fill(0);
  const calls = Math.min(20_000, Math.max(3, Math.floor(budget / bytes)));
  for (let i = 0; i < 3; i++) await comm.allReduce(x, "sum");
  const t = times.data();
  for (let s = 0; s < samples; s++) {
    await comm.barrier();
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) await comm.allReduce(x, "sum");
    t[s] = (performance.now() - t0) / 1000 / calls;
  }
  await comm.allReduce(times, "max");
  seconds.push(Float64Array.from(times.data()).sort()[samples >> 1]);
  x.dispose();
}
const w = zeros([1], { dtype: "f64" });
w.data()[0] = wrong;
await comm.allReduce(w, "sum");
if (rank === 0) console.log(JSON.stringify({ sizes, seconds, wrong: w.data()[0] }));
comm.finalize();
