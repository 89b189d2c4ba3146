// Elementwise and row kernels of the decoder: norms, activations, RoPE, attention.
// Each one is a plain loop (the reference) unless noted; fast paths must be tested against these.
#pragma once
#include <cstdint>
#include <vector>

namespace calq {

// y = x / sqrt(mean(x^2) + eps) * w   (Zhang & Sennrich 2019; HF LlamaRMSNorm). y may alias x.
void rms_norm(const float* x, int64_t rows, int64_t n, const float* w, float eps, float* y);
// y = (x - mean) / sqrt(var + eps) * w + b   (b may be null: Cohere's bias-free LayerNorm). y may alias x.
void layer_norm(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps, float* y);

enum class ActKind { SiLU, ReLU, GELU, GELUTanh };
float activate(float x, ActKind a);
// g[i] = act(g[i]) * u[i] (gated MLP); n elements.
void gated_act(float* g, const float* u, int64_t n, ActKind a);
void act_inplace(float* x, int64_t n, ActKind a);

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
void apply_rope(float* x, int64_t rows, int heads, int dim, const int32_t* pos, const RopeTable& t,
                bool interleaved);

// Causal (optionally sliding-window) scaled dot-product attention over a batch of B sequences of T
// tokens. q [B*T, nh*hd], k/v [B*T, nkv*hd], out [B*T, nh*hd]; query head h reads kv head
// h / (nh/nkv) (GQA). window > 0: query i sees keys j with i - window < j <= i.
struct AttnDims {
  int64_t batch = 1, seq = 0;
  int heads = 0, kv_heads = 0, head_dim = 0;
  int window = 0;
  float scale = 1.0f;
};
void attention_ref(const float* q, const float* k, const float* v, float* out, const AttnDims& d);
// Fast path (blocked, multi-threaded); must match attention_ref to fp32 rounding.
void attention(const float* q, const float* k, const float* v, float* out, const AttnDims& d);

}  // namespace calq
