/* Memory bandwidth of the machine by buffer size, 2 threads (OpenMP): the best of 5
 * passes of AVX-512 loads (read), stores (write) and non-temporal stores (nt-write) over
 * one buffer. A measurement for perf/results only, not part of the build:
 *   gcc -O2 -fopenmp -mavx512f -o membw membw.c && OMP_NUM_THREADS=2 ./membw */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main() {
    for (size_t mb = 4; mb <= 512; mb *= 2) {
        size_t n = mb << 20;
        float *a = aligned_alloc(64, n), *b = aligned_alloc(64, n);
        memset(a, 1, n);
        memset(b, 2, n);
        double br = 1e9, bw = 1e9, bn = 1e9;
        for (int r = 0; r < 5; r++) {
            double t = omp_get_wtime();
            float tot = 0;
#pragma omp parallel reduction(+ : tot)
            {
                __m512 s = _mm512_setzero_ps();
#pragma omp for
                for (size_t i = 0; i < n / 4; i += 16)
                    s = _mm512_add_ps(s, _mm512_load_ps(a + i));
                tot += _mm512_reduce_add_ps(s);
            }
            t = omp_get_wtime() - t;
            if (t < br) br = t;
            t = omp_get_wtime();
#pragma omp parallel for
            for (size_t i = 0; i < n / 4; i += 16)
                _mm512_store_ps(b + i, _mm512_set1_ps(1.0f));
            t = omp_get_wtime() - t;
            if (t < bw) bw = t;
            t = omp_get_wtime();
#pragma omp parallel for
            for (size_t i = 0; i < n / 4; i += 16)
                _mm512_stream_ps(b + i, _mm512_set1_ps(2.0f));
            _mm_sfence();
            t = omp_get_wtime() - t;
            if (t < bn) bn = t;
        }
        printf("%4zu MB 2 threads: read %.1f GB/s, write %.1f GB/s, nt-write %.1f GB/s\n", mb,
               n / br / 1e9, n / bw / 1e9, n / bn / 1e9);
        free(a);
        free(b);
    }
}
