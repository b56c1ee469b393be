"""Write small Qwen2 GGUF files with the `gguf` package's own writer (GGUFWriter), so the
C reader is tested on files another implementation made.

Weights: F32 norms and biases; Q4_K and Q6_K matrices as raw blocks drawn here from a
seed (a valid block needs finite fp16 d/dmin; the codes may be anything), laid out as
ggml's block_q4_K / block_q6_K (144 / 210 bytes per 256 values).

    write_model(path, hidden=256, ffn=512, layers=2, heads=4, kv_heads=2, vocab=512,
                eps=1e-5, rope_base=1e4, seed=0, **mutations)
"""
import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter

Q4K, Q6K = GGMLQuantizationType.Q4_K, GGMLQuantizationType.Q6_K


def q4k_blocks(rng, rows, cols, sigma=0.02):
    """rows x cols/256 Q4_K blocks whose values spread like N(0, sigma^2) around 0."""
    nb = rows * cols // 256
    b = np.zeros((nb, 144), dtype=np.uint8)
    d = np.full(nb, sigma / 2.3 / 52.0, dtype=np.float16)
    dmin = np.full(nb, sigma / 2.3 * 7.5 / 40.0, dtype=np.float16)
    b[:, 0:2] = d.view(np.uint8).reshape(nb, 2)
    b[:, 2:4] = dmin.view(np.uint8).reshape(nb, 2)
    # 6-bit scales 42..63 and mins ~ 40 packed as ggml does: j < 4 in bytes j / j+4,
    # j >= 4 split over the low nibbles of bytes j+4 and the top bits of bytes j-4 / j
    sc = rng.integers(42, 64, size=(nb, 8))
    mn = np.clip(np.rint(sc * 40 / 52), 0, 63).astype(np.int64)
    s = np.zeros((nb, 12), dtype=np.int64)
    s[:, 0:4] = sc[:, 0:4]
    s[:, 4:8] = mn[:, 0:4]
    s[:, 8:12] = (sc[:, 4:8] & 0xF) | ((mn[:, 4:8] & 0xF) << 4)
    s[:, 0:4] |= (sc[:, 4:8] >> 4) << 6
    s[:, 4:8] |= (mn[:, 4:8] >> 4) << 6
    b[:, 4:16] = s.astype(np.uint8)
    q = np.clip(np.rint(7.5 + 2.3 * rng.standard_normal((nb, 256))), 0, 15).astype(np.uint8)
    b[:, 16:144] = q[:, :128] | (q[:, 128:] << 4)
    return b.reshape(rows, cols // 256 * 144)


def q6k_blocks(rng, rows, cols, sigma=0.02):
    nb = rows * cols // 256
    b = np.zeros((nb, 210), dtype=np.uint8)
    b[:, 0:192] = rng.integers(0, 256, size=(nb, 192), dtype=np.uint8)  # ql, qh: any 6-bit codes
    b[:, 192:208] = rng.integers(8, 40, size=(nb, 16)).astype(np.int8).view(np.uint8)
    d = np.full(nb, sigma / 18.0 / 24.0, dtype=np.float16)  # codes spread +-32 around 0
    b[:, 208:210] = d.view(np.uint8).reshape(nb, 2)
    return b.reshape(rows, cols // 256 * 210)


def write_model(path, hidden=256, ffn=512, layers=2, heads=4, kv_heads=2, vocab=512, eps=1e-5, rope_base=1e4,
                context=1024, seed=0, skip_key=None, skip_tensor=None, bad_shape=None, q6k_tensor=None,
                extra_type=None):
    """A complete qwen2 model; the keyword mutations make the broken files the tests need:
    skip_key / skip_tensor leave one out, bad_shape=(name, shape) writes one tensor with a
    wrong shape, extra_type=(name, ggml type id) stores one tensor as another type's bytes."""
    rng = np.random.default_rng(seed)
    w = GGUFWriter(path, "qwen2")
    keys = {
        "block_count": lambda: w.add_block_count(layers),
        "embedding_length": lambda: w.add_embedding_length(hidden),
        "feed_forward_length": lambda: w.add_feed_forward_length(ffn),
        "attention.head_count": lambda: w.add_head_count(heads),
        "attention.head_count_kv": lambda: w.add_head_count_kv(kv_heads),
        "rope.freq_base": lambda: w.add_rope_freq_base(rope_base),
        "attention.layer_norm_rms_epsilon": lambda: w.add_layer_norm_rms_eps(eps),
        "context_length": lambda: w.add_context_length(context),
    }
    for k, add in keys.items():
        if k != skip_key:
            add()
    kv = kv_heads * (hidden // heads)

    def mat(name, rows, cols, qtype=Q4K):
        if name == skip_tensor:
            return
        if bad_shape and bad_shape[0] == name:
            rows, cols = bad_shape[1]
        if q6k_tensor == name:
            qtype = Q6K
        data = q4k_blocks(rng, rows, cols) if qtype == Q4K else q6k_blocks(rng, rows, cols)
        raw = qtype
        if extra_type and extra_type[0] == name:  # another type's bytes (any values)
            raw = GGMLQuantizationType(extra_type[1])
            block, size = GGML_QUANT_SIZES[raw]
            data = rng.integers(0, 256, size=(rows, cols // block * size), dtype=np.uint8)
        w.add_tensor(name, data, raw_dtype=raw)  # shape from the bytes: rows x (blocks * block size)

    def vec(name, n, base=1.0, spread=0.2):
        if name == skip_tensor:
            return
        v = (base + spread * rng.standard_normal(n)).astype(np.float32)
        if bad_shape and bad_shape[0] == name:
            v = np.resize(v, bad_shape[1][-1])
        w.add_tensor(name, v)

    mat("token_embd.weight", vocab, hidden)
    vec("output_norm.weight", hidden)
    mat("output.weight", vocab, hidden, Q6K)
    for l in range(layers):
        p = f"blk.{l}."
        vec(p + "attn_norm.weight", hidden)
        mat(p + "attn_q.weight", hidden, hidden)
        vec(p + "attn_q.bias", hidden, 0.0, 0.1)
        mat(p + "attn_k.weight", kv, hidden)
        vec(p + "attn_k.bias", kv, 0.0, 0.3)
        mat(p + "attn_v.weight", kv, hidden, Q6K if l == 0 else Q4K)
        vec(p + "attn_v.bias", kv, 0.0, 0.05)
        mat(p + "attn_output.weight", hidden, hidden)
        vec(p + "ffn_norm.weight", hidden)
        mat(p + "ffn_gate.weight", ffn, hidden)
        mat(p + "ffn_up.weight", ffn, hidden)
        mat(p + "ffn_down.weight", hidden, ffn, Q6K if l == 0 else Q4K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
