/*
 * MPI_Allreduce peer for bench/allreduce.ts: in-place f32 sum over all processes, for each size
 * in bytes given on the command line. Per size: warm-up calls, then `samples` timed loops of
 * `iters` calls (iters from a byte budget), each loop's time being the slowest rank's (MPI_MAX);
 * rank 0 prints the median seconds per call as one line of JSON:
 *   {"sizes":[4096,...],"seconds":[3.1e-06,...],"wrong":0}
 * Usage: allreduce <samples> <budget bytes> <size bytes>...
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 4) {
    if (rank == 0) fprintf(stderr, "usage: %s <samples> <budget bytes> <size bytes>...\n", argv[0]);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int samples = atoi(argv[1]);
  double budget = atof(argv[2]);
  int nsizes = argc - 3;
  double *seconds = calloc(nsizes, sizeof(double));
  double *times = calloc(samples, sizeof(double));
  long wrong = 0;
  for (int s = 0; s < nsizes; s++) {
    long bytes = atol(argv[3 + s]);
    long n = bytes / 4;
    float *x = malloc(bytes);
    /* check once: every element must come back as the sum of the ranks' values */
    for (long i = 0; i < n; i++) x[i] = (float)(rank + 1);
    MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    for (long i = 0; i < n; i++) wrong += x[i] != (float)(size * (size + 1) / 2);
    for (long i = 0; i < n; i++) x[i] = 0.0f;
    long iters = (long)(budget / (double)bytes);
    if (iters < 3) iters = 3;
    if (iters > 20000) iters = 20000;
    for (int w = 0; w < 3; w++) MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    for (int k = 0; k < samples; k++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      for (long i = 0; i < iters; i++) MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      double dt = (MPI_Wtime() - t0) / (double)iters;
      MPI_Allreduce(&dt, &times[k], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    }
    qsort(times, samples, sizeof(double), compare);
    seconds[s] = times[samples / 2];
    free(x);
  }
  long wrongAll = 0;
  MPI_Reduce(&wrong, &wrongAll, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    printf("{\"sizes\":[");
    for (int s = 0; s < nsizes; s++) printf("%s%s", s ? "," : "", argv[3 + s]);
    printf("],\"seconds\":[");
    for (int s = 0; s < nsizes; s++) printf("%s%.9g", s ? "," : "", seconds[s]);
    printf("],\"wrong\":%ld}\n", wrongAll);
  }
  free(seconds);
  free(times);
  MPI_Finalize();
  return 0;
}
