// Skill-routed Conv2d and Embedding: per-task weights base + mixed skills.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include "skills/inventory.h"
#include "skills/router.h"
#include "skills/task_batch.h"

namespace skillgrid::skills {

/// Arithmetic of a convolution's products.
enum class ConvPrecision {
  /// fp32 throughout (the references' arithmetic).
  kFloat32,
  /// Mixed precision, as torch.autocast(bfloat16): input, kernel and output gradient are rounded
  /// to bfloat16 and multiplied with fp32 accumulation (oneDNN; AMX or AVX512-BF16 where the CPU
  /// has them, ~3-8x fp32 there). The output is a channels-last bfloat16 tensor (the next layers
  /// run on it, halving activation traffic); the input may be fp32 or bf16 and gets a gradient of
  /// its own type; kernel and bias gradients are fp32, as are parameters and optimiser state.
  kBFloat16,
};

/// "fp32" | "bf16".
const char* ConvPrecisionName(ConvPrecision precision);
/// Inverse of ConvPrecisionName; throws std::invalid_argument naming the valid values.
ConvPrecision ParseConvPrecision(const std::string& name);

/// Options of a SkillConv2d (square kernel, stride and padding).
struct SkillConv2dOptions {
  /// in_channels -> out_channels with a kernel_size x kernel_size kernel.
  SkillConv2dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size);

  /// Input channels.
  TORCH_ARG(int64_t, in_channels);
  /// Output channels.
  TORCH_ARG(int64_t, out_channels);
  /// Square kernel size.
  TORCH_ARG(int64_t, kernel_size);
  /// Stride in both directions.
  TORCH_ARG(int64_t, stride) = 1;
  /// Zero padding on every side.
  TORCH_ARG(int64_t, padding) = 0;
  /// Whether the base convolution has a bias.
  TORCH_ARG(bool, bias) = true;
  /// The skills, over the weight seen as a (in_channels*k*k) x out_channels matrix.
  TORCH_ARG(SkillInventoryOptions, skills) = SkillInventoryOptions();
  /// The layer's own router (ignored when `router` is set).
  TORCH_ARG(RouterOptions, routing) = RouterOptions::Poly(1, 9);
  /// A router shared with other layers (not registered here; its owner registers it).
  TORCH_ARG(Router, router) = nullptr;
  /// Arithmetic of the convolutions (not part of the parameters: may change between calls).
  TORCH_ARG(ConvPrecision, precision) = ConvPrecision::kFloat32;
};

/// A convolution in `precision` (see ConvPrecision for the types in and out), with autograd.
at::Tensor Conv2dInPrecision(const at::Tensor& x, const at::Tensor& kernel, const at::Tensor& bias, int64_t stride,
                             int64_t padding, ConvPrecision precision);

/// Conv2d whose weight is base + a per-task mixture of skills; each distinct task's rows run
/// one convolution with that task's merged kernel. MHR heads split input and output channels.
class SkillConv2dImpl : public torch::nn::Cloneable<SkillConv2dImpl> {
 public:
  /// Builds the base Conv2d (PyTorch init), router and skills.
  explicit SkillConv2dImpl(SkillConv2dOptions options);
  /// (Re)creates the base layer, router (unless shared) and skills.
  void reset() override;
  /// Prints sizes, router and inventory kinds.
  void pretty_print(std::ostream& stream) const override;

  /// x (N, C_in, H, W) with one task per row -> (N, C_out, H', W').
  at::Tensor forward(const at::Tensor& x, const TaskBatch& batch);
  /// The kernels of `batch` with one routing draw (as forward makes): kernels (K, C_out, C_in, k,
  /// k) and biases (K, C_out) (undefined without bias). K = 1 when one kernel serves every row
  /// (a single task, or a task-independent router), else one per distinct task in batch order.
  std::pair<at::Tensor, at::Tensor> BatchKernels(const TaskBatch& batch);
  /// The effective kernel (C_out, C_in, k, k) and bias of one task under eval routing.
  std::pair<at::Tensor, at::Tensor> EffectiveWeights(int64_t task) const;
  /// A plain torch Conv2d holding one task's effective weights, on this layer's device.
  torch::nn::Conv2d ExportTask(int64_t task) const;

  /// The base (shared theta_0) convolution.
  torch::nn::Conv2d base() const { return base_; }
  /// The router (own or shared).
  Router router() const { return router_; }
  /// The skill inventory of the kernel.
  SkillInventory skills() const { return skills_; }

  /// The options the layer was built with.
  SkillConv2dOptions options;

 private:
  std::pair<at::Tensor, at::Tensor> TaskKernels(const SkillWeights& weights) const;
  // The convolution as SkillLinear's masked low-rank form over im2col patches.
  at::Tensor ForwardPatches(const at::Tensor& x, const TaskBatch& batch, const SkillWeights& weights) const;
  // Without autograd in bf16: the base kernel over every row plus one convolution by every
  // task's input-side factors, each row then taking its own task's r channels times B_t (two
  // large oneDNN calls instead of one small one per task; a rollout step has ~8 rows per task).
  // Undefined when the skills carry a bias delta (the caller then runs per task).
  at::Tensor ForwardBaseAndLowRankBf16(const at::Tensor& x, const TaskBatch& batch, const SkillWeights& weights) const;
  // The shared kernel followed by the factor kernels a_kernels (U*r, in, k, k) and `pad` zero
  // kernels, as one (out + U*r + pad, in, k, k) kernel, with the bias extended by zeros (undefined
  // without one): a single convolution then computes the base output and every task's factors.
  std::pair<at::Tensor, at::Tensor> BaseAndFactorKernels(const at::Tensor& a_kernels, int64_t pad) const;
  // The same in fp32 where 3x3 convolutions run as fp32 Winograd: one call over the base kernel
  // and every task's factors (one kernel transform instead of one per task), then
  // AddTaskLowRank. Undefined when the skills carry a bias delta.
  at::Tensor ForwardBaseAndLowRankWinogradFp32(const at::Tensor& x, const TaskBatch& batch,
                                               const SkillWeights& weights) const;

  torch::nn::Conv2d base_{nullptr};
  Router router_{nullptr};
  SkillInventory skills_{nullptr};
};

/// Module holder for SkillConv2dImpl.
TORCH_MODULE(SkillConv2d);

/// Options of a SkillEmbedding.
struct SkillEmbeddingOptions {
  /// A table of num_embeddings rows of embedding_dim.
  SkillEmbeddingOptions(int64_t num_embeddings, int64_t embedding_dim);

  /// Rows of the table.
  TORCH_ARG(int64_t, num_embeddings);
  /// Width of each row.
  TORCH_ARG(int64_t, embedding_dim);
  /// The skills, over the table seen as a num_embeddings x embedding_dim matrix.
  TORCH_ARG(SkillInventoryOptions, skills) = SkillInventoryOptions();
  /// The layer's own router (ignored when `router` is set).
  TORCH_ARG(RouterOptions, routing) = RouterOptions::Poly(1, 9);
  /// A router shared with other layers (not registered here; its owner registers it).
  TORCH_ARG(Router, router) = nullptr;
};

/// Embedding whose table is base + a per-task mixture of skills: the U task tables are stacked
/// and each row looks up its own task's table. MHR heads split table rows and columns.
class SkillEmbeddingImpl : public torch::nn::Cloneable<SkillEmbeddingImpl> {
 public:
  /// Builds the base Embedding (N(0,1) init, as PyTorch), router and skills.
  explicit SkillEmbeddingImpl(SkillEmbeddingOptions options);
  /// (Re)creates the base table, router (unless shared) and skills.
  void reset() override;
  /// Prints sizes, router and inventory kinds.
  void pretty_print(std::ostream& stream) const override;

  /// indices (N, ...) int64 in [0, num_embeddings), one task per row -> (N, ..., embedding_dim).
  at::Tensor forward(const at::Tensor& indices, const TaskBatch& batch);
  /// The effective table (num_embeddings, embedding_dim) of one task under eval routing.
  at::Tensor EffectiveTable(int64_t task) const;
  /// A plain torch Embedding holding one task's effective table, on this layer's device.
  torch::nn::Embedding ExportTask(int64_t task) const;

  /// The base (shared theta_0) table.
  torch::nn::Embedding base() const { return base_; }
  /// The router (own or shared).
  Router router() const { return router_; }
  /// The skill inventory of the table.
  SkillInventory skills() const { return skills_; }

  /// The options the layer was built with.
  SkillEmbeddingOptions options;

 private:
  torch::nn::Embedding base_{nullptr};
  Router router_{nullptr};
  SkillInventory skills_{nullptr};
};

/// Module holder for SkillEmbeddingImpl.
TORCH_MODULE(SkillEmbedding);

}  // namespace skillgrid::skills
