// Elementwise and row kernels of the decoder: norms, activations, RoPE, attention.
// Every kernel has a plain scalar reference (*_ref, ops.cpp); the unsuffixed names are the fast
// paths the decoder runs (ops_fast.cpp, attention.cpp: AVX-512 or AVX2 chosen at run time,
// kernels/simd_kernels.h), tested against the references on every ISA (tests/kernels_ops_test.cpp,
// kernels_attention_test.cpp).
#pragma once
#include <cstdint>
#include <vector>

namespace calq {

// y = x / sqrt(mean(x^2) + eps) * w   (Zhang & Sennrich 2019; HF LlamaRMSNorm). y may alias x.
void rms_norm(const float* x, int64_t rows, int64_t n, const float* w, float eps, float* y);
// y = (x - mean) / sqrt(var + eps) * w + b   (b may be null: Cohere's bias-free LayerNorm). y may alias x.
void layer_norm(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps, float* y);
// The scalar references of the above (double accumulation); rms_norm/layer_norm are vectorised.
void rms_norm_ref(const float* x, int64_t rows, int64_t n, const float* w, float eps, float* y);
void layer_norm_ref(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps, float* y);

enum class ActKind { SiLU, ReLU, GELU, GELUTanh };
float activate(float x, ActKind a);
// g[i] = act(g[i]) * u[i] (gated MLP); n elements.
void gated_act(float* g, const float* u, int64_t n, ActKind a);
void act_inplace(float* x, int64_t n, ActKind a);
// Scalar references (activate() per element).
void gated_act_ref(float* g, const float* u, int64_t n, ActKind a);
void act_inplace_ref(float* x, int64_t n, ActKind a);

// Rotary embedding table: cos/sin of position * inv_freq[i], [positions, half] row-major.
struct RopeTable {
  int positions = 0, half = 0;
  std::vector<float> cos, sin;
};
// inv_freq[i] = theta^(-2i/dim) for i < dim/2 (RoFormer, Su et al. 2021), before scaling.
std::vector<double> rope_inv_freq(double theta, int dim);
RopeTable make_rope_table(const std::vector<double>& inv_freq, int positions, double position_scale);
// Rotates `heads` heads of width `dim` in every row of x [rows, heads*dim]; row r has position pos[r].
// interleaved=false: pairs (i, i+dim/2) (HF rotate_half); true: pairs (2i, 2i+1) (Cohere, GPT-J).
// ld: floats between consecutive rows (0: heads*dim), e.g. q/k inside a fused q|k|v product.
void apply_rope(float* x, int64_t rows, int heads, int dim, const int32_t* pos, const RopeTable& t,
                bool interleaved, int64_t ld = 0);
void apply_rope_ref(float* x, int64_t rows, int heads, int dim, const int32_t* pos, const RopeTable& t,
                    bool interleaved, int64_t ld = 0);

// Causal (optionally sliding-window) scaled dot-product attention over a batch of B sequences of T
// tokens. q [B*T, nh*hd], k/v [B*T, nkv*hd], out [B*T, nh*hd]; query head h reads kv head
// h / (nh/nkv) (GQA). window > 0: query i sees keys j with i - window < j <= i.
struct AttnDims {
  int64_t batch = 1, seq = 0;
  int heads = 0, kv_heads = 0, head_dim = 0;
  int window = 0;
  float scale = 1.0f;
  bool bf16 = false;  // attention() only: bf16-rounded Q, K, P, V products (f32 softmax and accumulation)
  // Row strides in floats (0: dense, i.e. heads*head_dim for q/out, kv_heads*head_dim for k/v),
  // so q, k, v can be column blocks of one fused q|k|v product.
  int64_t q_ld = 0, k_ld = 0, v_ld = 0, out_ld = 0;
  int64_t qld() const { return q_ld ? q_ld : int64_t(heads) * head_dim; }
  int64_t kld() const { return k_ld ? k_ld : int64_t(kv_heads) * head_dim; }
  int64_t vld() const { return v_ld ? v_ld : int64_t(kv_heads) * head_dim; }
  int64_t outld() const { return out_ld ? out_ld : int64_t(heads) * head_dim; }
};
void attention_ref(const float* q, const float* k, const float* v, float* out, const AttnDims& d);
// Fast path (kernels/attention.cpp: blocked, online softmax, multi-threaded); matches
// attention_ref to fp32 rounding (d.bf16 = false) or to bf16 input rounding (d.bf16 = true).
void attention(const float* q, const float* k, const float* v, float* out, const AttnDims& d);

}  // namespace calq
