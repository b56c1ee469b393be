// stream.cuh - the 16-byte loads and stores of the streaming ops (rmsnorm, rope_neox,
// dequant_q4k, embed) and of gemm_fp8 v2's weights, chosen by two tunables, so that a --tune
// run can ask whether the cache hints move them toward the copy rate:
//   LDHINT 1: a plain load (the compiler's choice; const __restrict__ usually makes it
//             the read-only path);
//          2: ld.global.nc.L1::no_allocate.L2::256B: read-only, no L1 line, and the L2
//             fetches the whole 256-byte stretch at the first miss (PTX ISA, ld: the
//             prefetch-size qualifier; the same hint took gemm_fp8 v2 2-8 % faster).
//   STHINT 1: st.global.cs (streaming, evict-first: the output is larger than the L2 and
//             nothing here reads it back);
//          2: a plain st.global (write-back, the L2's default policy).
#pragma once
#ifndef LDHINT
#define LDHINT 1
#endif
#ifndef STHINT
#define STHINT 1
#endif

// 16 bytes from p (16-byte aligned).
__device__ __forceinline__ uint4 ld_stream_u4(const void *p) {
#if LDHINT == 2
    uint4 r;
    asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
        : "l"(p));
    return r;
#else
    return *(const uint4 *)p;
#endif
}

__device__ __forceinline__ float4 ld_stream(const float4 *p) {
#if LDHINT == 2
    const uint4 r = ld_stream_u4(p);
    return make_float4(__uint_as_float(r.x), __uint_as_float(r.y), __uint_as_float(r.z), __uint_as_float(r.w));
#else
    return *p;
#endif
}

__device__ __forceinline__ void st_stream(float4 *p, float4 v) {
#if STHINT == 2
    *p = v;
#else
    __stcs(p, v);
#endif
}
