// InstructionCache: lookups give the GRU's embeddings of each distinct instruction in the
// observation's order, encode only instructions not seen since Clear(), and follow new weights
// after Clear().
#include "training/instruction_cache.h"

#include <gtest/gtest.h>

#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

namespace skillgrid::training {
namespace {

// Observation of rows whose instructions are token rows `ids` (length 3 each), all task 0.
agents::Observation Rows(const std::vector<std::vector<int32_t>>& ids) {
  const int64_t b = static_cast<int64_t>(ids.size());
  at::Tensor tokens = at::zeros({b, 4}, at::kInt);
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j < 3; ++j) tokens[i][j] = ids[static_cast<size_t>(i)][static_cast<size_t>(j)];
  }
  return agents::MakeObservation(at::zeros({b, 7, 7, 3}, at::kByte), tokens, at::full({b}, 3, at::kInt),
                                 at::zeros({b}, at::kLong));
}

agents::ActorCritic SmallModel() {
  torch::manual_seed(5);
  agents::ActorCritic model(agents::ModelOptions("small"));
  model->eval();  // deterministic routing: the cache must equal a fresh encoding
  return model;
}

TEST(InstructionCache, LookupsEqualFreshEncodingsInTheObservationsOrderAcrossCalls) {
  agents::ActorCritic model = SmallModel();
  c10::InferenceMode inference;
  InstructionCache cache;
  const agents::Observation first = Rows({{1, 2, 3}, {4, 5, 6}, {1, 2, 3}});
  const at::Tensor a = cache.Lookup(*model, first, first);
  ASSERT_EQ(a.size(0), 2);  // two distinct instructions
  EXPECT_TRUE(torch::allclose(a, model->EncodeInstructions(first), 1e-6, 1e-6));
  // One known instruction (in second place now) among three new ones.
  const agents::Observation second = Rows({{7, 8, 9}, {4, 5, 6}, {9, 9, 9}, {2, 2, 2}});
  const at::Tensor b = cache.Lookup(*model, second, second);
  ASSERT_EQ(b.size(0), 4);
  EXPECT_TRUE(torch::allclose(b, model->EncodeInstructions(second), 1e-6, 1e-6));
  EXPECT_TRUE(torch::equal(b[1], a[1])) << "a known instruction must come from the cache unchanged";
}

TEST(InstructionCache, ClearForgetsEmbeddingsOfOldWeights) {
  agents::ActorCritic model = SmallModel();
  InstructionCache cache;
  const agents::Observation obs = Rows({{1, 2, 3}, {4, 5, 6}});
  at::Tensor before;
  {
    c10::InferenceMode inference;
    before = cache.Lookup(*model, obs, obs).clone();
  }
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(0.05);
  }
  c10::InferenceMode inference;
  EXPECT_TRUE(torch::equal(cache.Lookup(*model, obs, obs), before)) << "without Clear the cache keeps old embeddings";
  cache.Clear();
  const at::Tensor after = cache.Lookup(*model, obs, obs);
  EXPECT_FALSE(torch::allclose(after, before));
  EXPECT_TRUE(torch::allclose(after, model->EncodeInstructions(obs), 1e-6, 1e-6));
}

TEST(InstructionCache, WorksOutsideInferenceModeAfterUseInsideIt) {
  agents::ActorCritic model = SmallModel();
  InstructionCache cache;
  const agents::Observation obs = Rows({{1, 2, 3}});
  {
    c10::InferenceMode inference;
    cache.Lookup(*model, obs, obs);
  }
  cache.Clear();
  torch::NoGradGuard no_grad;
  const agents::Observation other = Rows({{3, 2, 1}, {1, 2, 3}});
  EXPECT_TRUE(torch::allclose(cache.Lookup(*model, other, other), model->EncodeInstructions(other), 1e-6, 1e-6));
}

}  // namespace
}  // namespace skillgrid::training
