// Tests of agents/recurrent_kernels: the fused LSTM/GRU steps and the fused LSTM/GRU sequences
// against the plain autograd formulas, in double precision.
#include "agents/recurrent_kernels.h"

#include <gtest/gtest.h>

#include <torch/csrc/autograd/autograd.h>

#include "agents/layers.h"
#include "skills/task_batch.h"

namespace skillgrid::agents {
namespace {

TEST(RecurrentKernels, FusedLstmStepMatchesTheUnfusedFormulaAndItsGradients) {
  torch::manual_seed(5);
  const at::Tensor gates = at::randn({6, 4 * 5}, at::kDouble).requires_grad_();
  const at::Tensor c = at::randn({6, 5}, at::kDouble).requires_grad_();
  const at::Tensor weights = at::randn({6, 10}, at::kDouble);  // a loss mixing h' and c'
  const at::Tensor fused = LstmPointwise(gates, c);
  auto g = gates.chunk(4, 1);
  const at::Tensor c_ref = g[1].sigmoid() * c + g[0].sigmoid() * g[2].tanh();
  const at::Tensor ref = at::cat({g[3].sigmoid() * c_ref.tanh(), c_ref}, 1);
  ASSERT_TRUE(at::allclose(fused, ref, 1e-12, 1e-12));
  const auto d_fused = torch::autograd::grad({(fused * weights).sum()}, {gates, c});
  const auto d_ref = torch::autograd::grad({(ref * weights).sum()}, {gates, c});
  EXPECT_TRUE(at::allclose(d_fused[0], d_ref[0], 1e-10, 1e-12));
  EXPECT_TRUE(at::allclose(d_fused[1], d_ref[1], 1e-10, 1e-12));
}

TEST(RecurrentKernels, FusedGruStepMatchesTheUnfusedFormulaAndKeepsEndedRows) {
  torch::manual_seed(6);
  const at::Tensor gi = at::randn({5, 3 * 4}, at::kDouble).requires_grad_();
  const at::Tensor gh = at::randn({5, 3 * 4}, at::kDouble).requires_grad_();
  const at::Tensor h = at::randn({5, 4}, at::kDouble).requires_grad_();
  const at::Tensor valid = at::tensor({1.0, 0.0, 1.0, 1.0, 0.0}, at::kDouble);
  const at::Tensor weights = at::randn({5, 4}, at::kDouble);
  const at::Tensor fused = GruPointwise(gi, gh, h, valid);
  auto i = gi.chunk(3, 1);
  auto hc = gh.chunk(3, 1);
  const at::Tensor r = (i[0] + hc[0]).sigmoid();
  const at::Tensor z = (i[1] + hc[1]).sigmoid();
  const at::Tensor n = (i[2] + r * hc[2]).tanh();
  const at::Tensor ref = h + valid.unsqueeze(1) * (n + z * (h - n) - h);
  ASSERT_TRUE(at::allclose(fused, ref, 1e-12, 1e-12));
  EXPECT_TRUE(at::equal(fused[1], h[1]));  // an ended row keeps its state exactly
  const auto d_fused = torch::autograd::grad({(fused * weights).sum()}, {gi, gh, h});
  const auto d_ref = torch::autograd::grad({(ref * weights).sum()}, {gi, gh, h});
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(at::allclose(d_fused[k], d_ref[k], 1e-10, 1e-12)) << k;
}


// Reference unroll with plain autograd ops (the unfused LSTM formula), for LstmSequence.
at::Tensor ReferenceUnroll(const at::Tensor& gates, const at::Tensor& state, const at::Tensor& resets,
                           const RecurrentMap& map) {
  const int64_t hid = map.weight.size(1);
  std::vector<at::Tensor> outs;
  at::Tensor s = state;
  for (int64_t k = 0; k < gates.size(1); ++k) {
    if (k > 0) s = s * resets.select(1, k).unsqueeze(1);
    const at::Tensor h = s.narrow(1, 0, hid), c = s.narrow(1, hid, hid);
    at::Tensor g = gates.select(1, k) + at::linear(h, map.weight, map.bias);
    if (map.a.defined()) {
      at::Tensor p = h.mm(map.a);
      if (map.mask.defined()) p = p * map.mask;
      g = g + p.mm(map.b);
    }
    auto q = g.chunk(4, 1);
    const at::Tensor c_new = q[1].sigmoid() * c + q[0].sigmoid() * q[2].tanh();
    s = at::cat({q[3].sigmoid() * c_new.tanh(), c_new}, 1);
    outs.push_back(s);
  }
  return at::stack(outs, 1);
}

struct SequenceCase {
  bool low_rank;
  bool mask;
  bool bias;
};

class LstmSequenceTest : public ::testing::TestWithParam<SequenceCase> {};

TEST_P(LstmSequenceTest, FusedUnrollMatchesStepByStepAutogradInValuesAndGradients) {
  // Episode resets mid-sequence, a mixed-task low-rank map and a loss on both h and c: the
  // hand-written BPTT must give the gradients autograd gives for the step-by-step formula.
  const SequenceCase cfg = GetParam();
  torch::manual_seed(11);
  const int64_t n = 5, steps = 6, hid = 4, k = 6;
  auto leaf = [](at::Tensor t) { return t.requires_grad_(); };
  const at::Tensor gates = leaf(at::randn({n, steps, 4 * hid}, at::kDouble));
  const at::Tensor state = leaf(at::randn({n, 2 * hid}, at::kDouble));
  at::Tensor resets = at::ones({n, steps}, at::kDouble);
  resets[1][2] = 0.0;
  resets[3][1] = 0.0;
  resets[3][5] = 0.0;
  RecurrentMap map;
  map.weight = leaf(at::randn({4 * hid, hid}, at::kDouble));
  if (cfg.bias) map.bias = leaf(at::randn({4 * hid}, at::kDouble));
  if (cfg.low_rank) {
    map.a = leaf(at::randn({hid, k}, at::kDouble));
    map.b = leaf(at::randn({k, 4 * hid}, at::kDouble));
    if (cfg.mask) map.mask = (at::arange(n).unsqueeze(1) % 2 == at::arange(k).unsqueeze(0) / 3).to(at::kDouble);
  }
  ASSERT_TRUE(SequenceIsFused(gates, state, map));
  const at::Tensor fused = LstmSequence(gates, state, resets, map);
  const at::Tensor ref = ReferenceUnroll(gates, state, resets, map);
  ASSERT_EQ(fused.sizes(), ref.sizes());
  ASSERT_TRUE(at::allclose(fused, ref, 1e-12, 1e-12));
  std::vector<at::Tensor> inputs = {gates, state, map.weight};
  for (const at::Tensor* t : {&map.bias, &map.a, &map.b}) {
    if (t->defined()) inputs.push_back(*t);
  }
  const at::Tensor weights = at::randn(fused.sizes(), at::kDouble);
  const auto d_fused = torch::autograd::grad({(fused * weights).sum()}, inputs, {}, /*retain_graph=*/true);
  const auto d_ref = torch::autograd::grad({(ref * weights).sum()}, inputs);
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_TRUE(at::allclose(d_fused[i], d_ref[i], 1e-10, 1e-12)) << "input " << i;
  }
  // A reset step passes no gradient to the state before it: d(state) at row 3 only sees step 0.
  const auto d_only_late = torch::autograd::grad({fused.narrow(1, 1, steps - 1).select(0, 3).sum()}, {state});
  EXPECT_EQ(d_only_late[0][3].abs().sum().item<double>(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Maps, LstmSequenceTest,
                         ::testing::Values(SequenceCase{false, false, true}, SequenceCase{true, false, true},
                                           SequenceCase{true, true, true}, SequenceCase{true, true, false}),
                         [](const ::testing::TestParamInfo<SequenceCase>& info) {
                           const SequenceCase& c = info.param;
                           return std::string(c.low_rank ? "LowRank" : "Plain") + (c.mask ? "Masked" : "") +
                                  (c.bias ? "WithBias" : "NoBias");
                         });

// Reference GRU over padded sequences with plain autograd ops (torch.nn.GRU's formula).
at::Tensor ReferenceGru(const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& valid, const RecurrentMap& map) {
  at::Tensor h = h0;
  for (int64_t t = 0; t < gi.size(1); ++t) {
    at::Tensor gh = at::linear(h, map.weight, map.bias);
    if (map.a.defined()) {
      at::Tensor p = h.mm(map.a);
      if (map.mask.defined()) p = p * map.mask;
      gh = gh + p.mm(map.b);
    }
    auto i = gi.select(1, t).chunk(3, 1);
    auto hc = gh.chunk(3, 1);
    const at::Tensor r = (i[0] + hc[0]).sigmoid(), z = (i[1] + hc[1]).sigmoid();
    const at::Tensor n = (i[2] + r * hc[2]).tanh();
    h = h + valid[t].unsqueeze(1) * (n + z * (h - n) - h);
  }
  return h;
}

class GruSequenceTest : public ::testing::TestWithParam<SequenceCase> {};

TEST_P(GruSequenceTest, FusedGruMatchesStepByStepAutogradInValuesAndGradients) {
  // Sequences of different lengths (rows keep their state once ended), a mixed-task low-rank
  // map: the hand-written BPTT must match autograd through the plain formula.
  const SequenceCase cfg = GetParam();
  torch::manual_seed(13);
  const int64_t n = 4, steps = 5, hid = 3, k = 4;
  auto leaf = [](at::Tensor t) { return t.requires_grad_(); };
  const at::Tensor gi = leaf(at::randn({n, steps, 3 * hid}, at::kDouble));
  const at::Tensor h0 = leaf(at::randn({n, hid}, at::kDouble));
  const at::Tensor lengths = at::tensor({5, 2, 4, 1}, at::kLong);
  const at::Tensor valid = (lengths.unsqueeze(0) > at::arange(steps).unsqueeze(1)).to(at::kDouble);  // (L, N)
  RecurrentMap map;
  map.weight = leaf(at::randn({3 * hid, hid}, at::kDouble));
  if (cfg.bias) map.bias = leaf(at::randn({3 * hid}, at::kDouble));
  if (cfg.low_rank) {
    map.a = leaf(at::randn({hid, k}, at::kDouble));
    map.b = leaf(at::randn({k, 3 * hid}, at::kDouble));
    if (cfg.mask) map.mask = (at::arange(n).unsqueeze(1) % 2 == at::arange(k).unsqueeze(0) / 2).to(at::kDouble);
  }
  ASSERT_TRUE(SequenceIsFused(gi, h0, map));
  const at::Tensor fused = GruSequence(gi, h0, valid, map);
  const at::Tensor ref = ReferenceGru(gi, h0, valid, map);
  ASSERT_TRUE(at::allclose(fused, ref, 1e-12, 1e-12));
  std::vector<at::Tensor> inputs = {gi, h0, map.weight};
  for (const at::Tensor* t : {&map.bias, &map.a, &map.b}) {
    if (t->defined()) inputs.push_back(*t);
  }
  const at::Tensor weights = at::randn(fused.sizes(), at::kDouble);
  const auto d_fused = torch::autograd::grad({(fused * weights).sum()}, inputs);
  const auto d_ref = torch::autograd::grad({(ref * weights).sum()}, inputs);
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_TRUE(at::allclose(d_fused[i], d_ref[i], 1e-10, 1e-12)) << "input " << i;
  }
  // Row 3 ended after one step: its later input gates get no gradient.
  EXPECT_EQ(d_fused[0][3].narrow(0, 1, steps - 1).abs().sum().item<double>(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Maps, GruSequenceTest,
                         ::testing::Values(SequenceCase{false, false, true}, SequenceCase{true, true, true},
                                           SequenceCase{true, true, false}),
                         [](const ::testing::TestParamInfo<SequenceCase>& info) {
                           const SequenceCase& c = info.param;
                           return std::string(c.low_rank ? "LowRank" : "Plain") + (c.mask ? "Masked" : "") +
                                  (c.bias ? "WithBias" : "NoBias");
                         });

TEST(RecurrentKernels, LstmCellUnrollEqualsItsStepsWithTheSamePreparedMap) {
  // Both unroll paths against the cell's own steps, in float: the fused kernel (Poly low-rank,
  // one head: a matmul form) and the stepping fallback (MHR with two heads: no matmul form).
  torch::manual_seed(12);
  for (const RoutingOptions& routing : {RoutingOptions().router("poly").n_tasks(3).n_skills(4).rank(2),
                                        RoutingOptions().router("mhr").n_tasks(3).n_skills(4).rank(2).heads(2)}) {
    LstmCell cell(routing, LayerFamily::kMemory, 6, 6);
    for (auto& p : cell->parameters()) {
      torch::NoGradGuard no_grad;
      p.normal_(0.0, 0.5);
    }
    // Without a matmul form a prepared layer re-runs the layer, which in training mode draws new
    // routing each call; eval mode makes the stepping fallback deterministic.
    if (routing.heads() > 1) cell->eval();
    const auto batch = skills::TaskBatch::FromTaskIds(at::tensor({2, 0, 0, 1}, at::kLong));
    const PreparedLinear hh = cell->PrepareRecurrent(batch);
    RecurrentMap map;
    EXPECT_EQ(hh.ToRecurrentMap(&map), routing.heads() == 1) << routing.router();
    const at::Tensor gates = at::randn({4, 3, 24});
    const at::Tensor state = at::randn({4, 12});
    const at::Tensor resets = at::tensor({1.f, 1.f, 0.f, 1.f, 0.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 0.f}).view({4, 3});
    const at::Tensor unrolled = cell->Unroll(gates, state, resets, hh);
    at::Tensor s = state;
    for (int64_t k = 0; k < 3; ++k) {
      if (k > 0) s = s * resets.select(1, k).unsqueeze(1);
      s = cell->Step(gates.select(1, k), s, hh);
      EXPECT_TRUE(at::allclose(unrolled.select(1, k), s, 1e-5, 1e-6)) << routing.router() << " step " << k;
    }
  }
}

}  // namespace
}  // namespace skillgrid::agents
