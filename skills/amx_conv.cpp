#include "skills/amx_conv.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include "skills/bf16.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define SKILLGRID_HAVE_AMX_CODE 1
#endif

namespace skillgrid::skills {
namespace {

#ifdef SKILLGRID_HAVE_AMX_CODE

// Tile register layout (palette 1): 0-3 hold a 2x2 block of fp32 accumulators, 4-5 the two
// input-channel tiles (A), 6-7 the two output-channel tiles (B), each 16 rows x 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

constexpr int kTile = 16;       // rows of every tile; fp32 columns of a C tile
constexpr int kTileK = 32;      // bf16 K per tile product
constexpr int64_t kGroup = 16;  // samples per pass over the accumulators (A and B slices in L2)
constexpr int64_t kParts = 2;   // fixed sample halves, one per thread (see Conv3x3WeightGradAmx)

bool QueryAmx() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool tile = (edx >> 24) & 1u, bf16 = (edx >> 22) & 1u;
  if (!tile || !bf16) return false;
  // Linux hands out the 8 KB tile state only on request (ARCH_REQ_XCOMP_PERM, XTILEDATA = 18).
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

// Geometry of the packed operands: K runs over each sample's output cells laid out with the
// padded row width (W + 2, the two pad columns carry zero gradient), rounded up to whole tiles,
// so every 3x3 tap reads the padded, transposed input at a constant offset.
struct Geometry {
  int64_t n, in, out, h, w;
  int64_t wp() const { return w + 2; }
  int64_t frame() const { return (h + 2) * wp(); }                     // padded cells per sample
  int64_t k_per_sample() const { return (h * wp() + kTileK - 1) / kTileK * kTileK; }
  int64_t a_row() const {  // columns of one group's packed input (kGroup samples and margins)
    const int64_t need = std::max(1 + kGroup * frame(), 1 + (kGroup - 1) * frame() + k_per_sample() + 2 * wp() + 1);
    return (need + 31) / 32 * 32;
  }
  int64_t groups() const { return (n + kGroup - 1) / kGroup; }
};

// x (N, H, W, C_in) -> a (groups, C_in, a_row): per group of kGroup samples, channel-major rows,
// each sample in a zero-bordered (H+2) x (W+2) frame, the first starting at column 1. A group's
// block is contiguous (~350 KB for 128 channels of 7x7 maps): its tile loads stay in few pages.
void PackInput(const uint16_t* x, const Geometry& g, uint16_t* a) {
  const int64_t row = g.a_row(), frame = g.frame();
  // Sample by sample: one sample's (H, W, C_in) block stays in L1 while all C_in rows get its frame.
  at::parallel_for(0, g.n, 2, [&](int64_t n0, int64_t n1) {
    for (int64_t s = n0; s < n1; ++s) {
      const uint16_t* xs = x + s * g.h * g.w * g.in;
      uint16_t* base = a + (s / kGroup) * g.in * row + 1 + (s % kGroup) * frame;
      for (int64_t i = 0; i < g.in; ++i) {
        uint16_t* f = base + i * row;
        std::fill(f, f + g.wp(), uint16_t{0});  // top border row
        for (int64_t y = 0; y < g.h; ++y) {
          uint16_t* fr = f + (y + 1) * g.wp();
          fr[0] = 0;
          for (int64_t c = 0; c < g.w; ++c) fr[c + 1] = xs[(y * g.w + c) * g.in + i];
          fr[g.w + 1] = 0;
        }
        std::fill(f + (g.h + 1) * g.wp(), f + frame, uint16_t{0});  // bottom border row
      }
    }
  });
  // The margins: column 0 and everything after the group's last frame.
  for (int64_t group = 0; group < g.groups(); ++group) {
    const int64_t used = std::min(g.n - group * kGroup, kGroup);
    for (int64_t i = 0; i < g.in; ++i) {
      uint16_t* dst = a + (group * g.in + i) * row;
      dst[0] = 0;
      std::fill(dst + 1 + used * frame, dst + row, uint16_t{0});
    }
  }
}

// dy (N, H, W, C_out) -> b (N, K/2, C_out, 2): pairs of consecutive K positions interleaved per
// channel (the AMX B layout); positions of the pad columns and past the end hold 0. Also sums dy
// per sample and channel into bias_rows (N, C_out).
void PackOutputGrad(const uint16_t* dy, const Geometry& g, uint16_t* b, float* bias_rows) {
  const int64_t kps = g.k_per_sample();
  at::parallel_for(0, g.n, 4, [&](int64_t n0, int64_t n1) {
    for (int64_t s = n0; s < n1; ++s) {
      uint16_t* bs = b + s * kps * g.out;
      float* bias = bias_rows + s * g.out;
      std::fill(bias, bias + g.out, 0.0f);
      for (int64_t q = 0; q < kps; ++q) {
        const int64_t y = q / g.wp(), c = q % g.wp() - 1;
        uint16_t* dst = bs + (q / 2) * g.out * 2 + (q % 2);
        if (y < g.h && c >= 0 && c < g.w) {
          const uint16_t* src = dy + ((s * g.h + y) * g.w + c) * g.out;
          for (int64_t o = 0; o < g.out; ++o) {
            dst[2 * o] = src[o];
            bias[o] += Bf16BitsToFloat(src[o]);
          }
        } else {
          for (int64_t o = 0; o < g.out; ++o) dst[2 * o] = 0;
        }
      }
    }
  });
}

// One 2x2 block of accumulators (two input-channel by two output-channel tiles) of one tap over
// samples [s0, s1): C[i][o] += sum_q A[i][q + tap offset] B[q][o].
__attribute__((target("amx-tile,amx-bf16"))) void AccumulateBlock(const uint16_t* a, const uint16_t* b,
                                                                   const Geometry& g, int64_t tap, int64_t ib,
                                                                   int64_t ob, int64_t s0, int64_t s1, bool first,
                                                                   float* acc) {
  const int64_t a_stride = g.a_row() * 2, b_stride = g.out * 4, c_stride = g.out * 4;
  const int64_t group_base = (s0 / kGroup) * kGroup;  // a holds this group's samples only
  const int64_t kh = tap / 3, kw = tap % 3;
  float* c00 = acc + (tap * g.in + ib * kTile) * g.out + ob * kTile;
  float* c01 = c00 + kTile;
  float* c10 = c00 + kTile * g.out;
  float* c11 = c10 + kTile;
  if (first) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  } else {
    _tile_loadd(0, c00, c_stride);
    _tile_loadd(1, c01, c_stride);
    _tile_loadd(2, c10, c_stride);
    _tile_loadd(3, c11, c_stride);
  }
  const int64_t kps = g.k_per_sample();
  const uint16_t* a0 = a + ib * kTile * g.a_row();
  const uint16_t* a1 = a0 + kTile * g.a_row();
  for (int64_t s = s0; s < s1; ++s) {
    for (int64_t k = 0; k < kps; k += kTileK) {
      const int64_t col = 1 + (s - group_base) * g.frame() + k + kh * g.wp() + kw - 1;
      const uint16_t* bk = b + (s * kps + k) * g.out + ob * kTile * 2;
      _tile_loadd(4, a0 + col, a_stride);
      _tile_loadd(5, a1 + col, a_stride);
      _tile_loadd(6, bk, b_stride);
      _tile_loadd(7, bk + kTile * 2, b_stride);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, c00, c_stride);
  _tile_stored(1, c01, c_stride);
  _tile_stored(2, c10, c_stride);
  _tile_stored(3, c11, c_stride);
}

TileConfig MakeTileConfig() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = kTile;
    config.colsb[t] = 64;
  }
  return config;
}

__attribute__((target("amx-tile,amx-bf16"))) void LoadTileConfig() {
  // Static storage: GCC does not see ldtilecfg read the struct and dropped the stores to a local.
  static const TileConfig config = MakeTileConfig();
  _tile_loadconfig(&config);
}

__attribute__((target("amx-tile"))) void ReleaseTiles() { _tile_release(); }

#endif  // SKILLGRID_HAVE_AMX_CODE

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// `count` uninitialised elements on a 64-byte boundary.
template <typename T>
std::unique_ptr<T[], FreeDeleter> AlignedBuffer(int64_t count) {
  const size_t bytes = (static_cast<size_t>(count) * sizeof(T) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return std::unique_ptr<T[], FreeDeleter>(static_cast<T*>(p));
}

}  // namespace

bool AmxBf16Available() {
#ifdef SKILLGRID_HAVE_AMX_CODE
  static std::once_flag once;
  static bool available = false;
  std::call_once(once, [] { available = std::getenv("SKILLGRID_NO_AMX") == nullptr && QueryAmx(); });
  return available;
#else
  return false;
#endif
}

bool Conv3x3WeightGradAmxSupports(const at::Tensor& x, const at::Tensor& dy) {
  return AmxBf16Available() && x.dim() == 4 && dy.dim() == 4 && x.scalar_type() == at::kBFloat16 &&
         dy.scalar_type() == at::kBFloat16 && x.device().is_cpu() && dy.device().is_cpu() && x.size(1) % 32 == 0 &&
         dy.size(1) % 32 == 0 && x.size(0) == dy.size(0) && x.size(2) == dy.size(2) && x.size(3) == dy.size(3) &&
         x.size(0) > 0;
}

void Conv3x3WeightGradAmx(const at::Tensor& x_in, const at::Tensor& dy_in, at::Tensor grad_weight,
                          at::Tensor grad_bias) {
  TORCH_CHECK(Conv3x3WeightGradAmxSupports(x_in, dy_in), "Conv3x3WeightGradAmx: unsupported operands x ",
              x_in.sizes(), " ", x_in.scalar_type(), " and dy ", dy_in.sizes(), " ", dy_in.scalar_type(),
              " (needs AMX, bf16, channels multiples of 32)");
  TORCH_CHECK(grad_weight.scalar_type() == at::kFloat && grad_weight.is_contiguous() &&
                  grad_weight.sizes() == at::IntArrayRef({dy_in.size(1), x_in.size(1), 3, 3}),
              "Conv3x3WeightGradAmx: grad_weight must be contiguous fp32 (", dy_in.size(1), ", ", x_in.size(1),
              ", 3, 3), got ", grad_weight.sizes());
  TORCH_CHECK(!grad_bias.defined() || (grad_bias.scalar_type() == at::kFloat && grad_bias.is_contiguous() &&
                                       grad_bias.numel() == dy_in.size(1)),
              "Conv3x3WeightGradAmx: grad_bias must be contiguous fp32 (", dy_in.size(1), "), got ",
              grad_bias.sizes());
#ifdef SKILLGRID_HAVE_AMX_CODE
  const at::Tensor x = ChannelsLastBf16(x_in), dy = ChannelsLastBf16(dy_in);
  const Geometry g{x.size(0), x.size(1), dy.size(1), x.size(2), x.size(3)};
  // The samples are split in two fixed halves, each packed and multiplied by one thread into its
  // own accumulators, then summed in order: the bits do not depend on the thread count, and each
  // thread's operands stay in its own core's caches (160 rows of 128x7x7: 2.55 ms on two
  // threads, 4.9 ms on one).
  const int64_t parts = std::min<int64_t>(kParts, g.n);
  std::vector<std::unique_ptr<float[], FreeDeleter>> part_acc(static_cast<size_t>(parts));
  const auto bias_rows = AlignedBuffer<float>(g.n * g.out);
  const auto* x_bits = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
  const auto* dy_bits = reinterpret_cast<const uint16_t*>(dy.data_ptr<at::BFloat16>());
  at::parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t part = p0; part < p1; ++part) {
      const int64_t first = g.n * part / parts, count = g.n * (part + 1) / parts - first;
      const Geometry gp{count, g.in, g.out, g.h, g.w};
      // Uninitialised, cache-line aligned buffers (the packers write every element; tile rows
      // that straddle two lines load at half speed).
      const auto a = AlignedBuffer<uint16_t>(gp.groups() * gp.in * gp.a_row());
      const auto b = AlignedBuffer<uint16_t>(gp.n * gp.k_per_sample() * gp.out);
      auto acc = AlignedBuffer<float>(9 * gp.in * gp.out);
      PackInput(x_bits + first * g.h * g.w * g.in, gp, a.get());
      PackOutputGrad(dy_bits + first * g.h * g.w * g.out, gp, b.get(), bias_rows.get() + first * g.out);
      const int64_t i_blocks = gp.in / (2 * kTile), o_blocks = gp.out / (2 * kTile);
      LoadTileConfig();
      for (int64_t s0 = 0; s0 < gp.n; s0 += kGroup) {
        const int64_t s1 = std::min(gp.n, s0 + kGroup);
        for (int64_t tap = 0; tap < 9; ++tap) {
          for (int64_t ib = 0; ib < i_blocks; ++ib) {
            for (int64_t ob = 0; ob < o_blocks; ++ob) {
              AccumulateBlock(a.get() + (s0 / kGroup) * gp.in * gp.a_row(), b.get(), gp, tap, 2 * ib, 2 * ob, s0, s1,
                              s0 == 0, acc.get());
            }
          }
        }
      }
      ReleaseTiles();
      part_acc[static_cast<size_t>(part)] = std::move(acc);
    }
  });
  float* acc = part_acc[0].get();
  for (int64_t part = 1; part < parts; ++part) {
    const float* more = part_acc[static_cast<size_t>(part)].get();
    for (int64_t e = 0; e < 9 * g.in * g.out; ++e) acc[e] += more[e];
  }
  // acc[tap][i][o] -> grad_weight[o][i][kh][kw].
  float* gw = grad_weight.data_ptr<float>();
  for (int64_t o = 0; o < g.out; ++o) {
    for (int64_t i = 0; i < g.in; ++i) {
      for (int64_t tap = 0; tap < 9; ++tap) gw[(o * g.in + i) * 9 + tap] = acc[static_cast<size_t>((tap * g.in + i) * g.out + o)];
    }
  }
  if (grad_bias.defined()) {
    float* gb = grad_bias.data_ptr<float>();
    for (int64_t o = 0; o < g.out; ++o) {
      double sum = 0.0;
      for (int64_t s = 0; s < g.n; ++s) sum += bias_rows[static_cast<size_t>(s * g.out + o)];
      gb[o] = static_cast<float>(sum);
    }
  }
#else
  (void)grad_bias;
#endif
}

}  // namespace skillgrid::skills
