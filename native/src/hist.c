/* Log-linear latency histograms: NFFI_HIST_SUB buckets per power of two, so any
 * reported quantile is within 25% above the true value (and never above max). */
#include "nffi_internal.h"

static int nffi__bucket(uint64_t v)
{
    if (v < NFFI_HIST_SUB)
        return (int)v;
    int e = 63 - __builtin_clzll(v);        /* >= 2 */
    if (e > NFFI_HIST_MAXEXP)
        return NFFI_HIST_N - 1;
    int sub = (int)((v >> (e - 2)) & (NFFI_HIST_SUB - 1));
    return NFFI_HIST_SUB + (e - 2) * NFFI_HIST_SUB + sub;
}

static uint64_t nffi__bucket_upper(int i)
{
    if (i < NFFI_HIST_SUB)
        return (uint64_t)i;
    if (i == NFFI_HIST_N - 1)
        return UINT64_MAX;                  /* open-ended; the caller caps by max */
    int e = (i - NFFI_HIST_SUB) / NFFI_HIST_SUB + 2;
    int sub = (i - NFFI_HIST_SUB) % NFFI_HIST_SUB;
    return ((uint64_t)(NFFI_HIST_SUB + sub + 1) << (e - 2)) - 1;
}

/* Only the worker thread writes histograms and only it reads them, but
 * snapshots of count/sum/max use relaxed atomics to stay race-free should a
 * stats reader ever run elsewhere. */
/* w: how many tasks this value stands for (latency sampling, nffi_internal.h). */
void nffi__hist_add(nffi__hist *h, int64_t v, uint64_t w)
{
    uint64_t u = v < 0 ? 0 : (uint64_t)v;   /* a clock can't go back, but be safe */
    h->bucket[nffi__bucket(u)] += w;
    NFFI_BUMP(&h->count, w);
    NFFI_BUMP(&h->sum, u * w);
    if (u > NFFI_LOAD(&h->max))
        NFFI_STORE(&h->max, u);
}

double nffi__hist_quantile(const nffi__hist *h, double q)
{
    uint64_t n = h->count;
    if (n == 0)
        return 0;
    if (!(q > 0))                           /* also catches NaN */
        q = 0;
    if (q > 1)
        q = 1;
    double want = q * (double)n;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;                             /* ceil without libm */
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    uint64_t seen = 0;
    for (int i = 0; i < NFFI_HIST_N; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t up = nffi__bucket_upper(i);
            return (double)(up < h->max ? up : h->max);
        }
    }
    return (double)h->max;
}
