// Tests of agents/: output shapes, determinism, parameter counts, routing seams, the recurrent
// cells against torch's, instruction deduplication.
#include "agents/actor_critic.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/modules/rnn.h>

#include "agents/layers.h"
#include "agents/observation.h"
#include "skills/task_batch.h"
#include "tests/cuda_util.h"

namespace skillgrid::agents {
namespace {

// A batch of B synthetic observations: random small tile values, two distinct missions.
Observation SyntheticBatch(int64_t b, int64_t tasks, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor images = at::randint(0, 11, {b, 7, 7, 3}, at::kByte);
  at::Tensor tokens = at::zeros({b, 8}, at::kInt);
  at::Tensor lengths = at::empty({b}, at::kInt);
  at::Tensor task_ids = at::arange(b, at::kLong) % tasks;
  for (int64_t i = 0; i < b; ++i) {
    const bool first = i % 2 == 0;
    const std::vector<int32_t> m = first ? std::vector<int32_t>{3, 5, 7, 9} : std::vector<int32_t>{2, 4, 6};
    for (size_t k = 0; k < m.size(); ++k) tokens[i][static_cast<int64_t>(k)] = m[k];
    lengths[i] = static_cast<int32_t>(m.size());
  }
  return MakeObservation(images, tokens, lengths, task_ids);
}

ModelOptions Options(const std::string& arch, const std::string& router, int64_t tasks) {
  ModelOptions o(arch);
  o.routing(RoutingOptions().router(router).n_tasks(tasks).n_skills(3).rank(2));
  return o;
}

class ArchTest : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(ArchTest, ShapesAndProbabilities) {
  const auto [arch, router] = GetParam();
  ActorCritic model(Options(arch, router, 3));
  const Observation obs = SyntheticBatch(6, 3, 1);
  const auto batch = skills::TaskBatch::FromTaskIds(obs.task_ids);
  const at::Tensor memory = at::zeros({6, model->memory_size()});
  const PolicyOutput out = model->Act(obs, memory, batch);
  EXPECT_EQ(out.log_probs.sizes(), (at::IntArrayRef{6, kNumActions}));
  EXPECT_EQ(out.values.sizes(), (at::IntArrayRef{6}));
  EXPECT_EQ(out.memory.sizes(), (at::IntArrayRef{6, model->memory_size()}));
  EXPECT_TRUE(at::allclose(out.log_probs.exp().sum(1), at::ones({6}), 1e-5, 1e-5));
  EXPECT_TRUE(at::isfinite(out.values).all().item<bool>());
  // The router seam: learned logits only for learned routers.
  EXPECT_EQ(model->RouterParameters().empty(), router != "poly");
}

INSTANTIATE_TEST_SUITE_P(Agents, ArchTest,
                         ::testing::Combine(::testing::Values("bow_endpool_res", "expert_filmcnn", "small"),
                                            ::testing::Values("none", "poly", "shared")));

TEST(SampleActions, FollowsThePolicyNeverPicksZeroProbabilityActionsAndRepeatsPerSeed) {
  const at::Tensor probs = at::tensor({0.1, 0.0, 0.6, 0.3}, at::kFloat);
  const int64_t n = 40000;
  const at::Tensor log_probs = probs.log().unsqueeze(0).expand({n, 4}).contiguous();
  at::manual_seed(7);
  const at::Tensor actions = SampleActions(log_probs);
  ASSERT_EQ(actions.sizes(), (std::vector<int64_t>{n}));
  ASSERT_EQ(actions.scalar_type(), at::kLong);
  const at::Tensor counts = at::bincount(actions, {}, 4).to(at::kDouble) / static_cast<double>(n);
  for (int64_t j = 0; j < 4; ++j) {
    // Binomial standard error is at most 0.0025 here; allow four of them.
    EXPECT_NEAR(counts[j].item<double>(), probs[j].item<double>(), 0.01) << "action " << j;
  }
  EXPECT_EQ(counts[1].item<double>(), 0.0) << "an action of probability 0 was drawn";
  at::manual_seed(7);
  EXPECT_TRUE(at::equal(SampleActions(log_probs), actions)) << "same seed, different actions";
  // A one-hot row always gives its action.
  const at::Tensor sure = at::tensor({0.0, 0.0, 1.0}, at::kFloat).log().unsqueeze(0).expand({50, 3}).contiguous();
  EXPECT_TRUE(at::equal(SampleActions(sure), at::full({50}, 2, at::kLong)));
}

TEST(SampleActions, NonFiniteProbabilitiesAreAClearError) {
  at::Tensor log_probs = at::zeros({3, 4});
  log_probs[1][2] = std::numeric_limits<float>::quiet_NaN();
  try {
    SampleActions(log_probs);
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("probabilities of row 1 sum to nan"), std::string::npos) << e.what();
  }
}

TEST(ActorCritic, SameSeedSameNetworkAndOutputs) {
  auto run = [] {
    at::manual_seed(7);
    ActorCritic model(Options("small", "poly", 2));
    model->eval();
    const Observation obs = SyntheticBatch(4, 2, 3);
    return model->Act(obs, at::zeros({4, model->memory_size()}), skills::TaskBatch::FromTaskIds(obs.task_ids))
        .log_probs;
  };
  EXPECT_TRUE(at::equal(run(), run()));
}

// Act's fused host path (no autograd, CPU) against the op-by-op step: same outputs up to
// rounding and the same random draws, for every router, in training (noisy routing) and eval.
TEST(ActorCritic, FusedActMatchesTheCompositeStepAndDrawsTheSameRandomNumbers) {
  for (const std::string arch : {"small", "bow_endpool_res"}) {
    for (const std::string router : {"none", "poly", "shared", "private", "mu", "adamix", "mhr"}) {
      ModelOptions o = Options(arch, router, 3);
      o.routing(o.routing().heads(2));
      ActorCritic model(o);
      const Observation obs = SyntheticBatch(7, 3, 11);
      const auto batch = skills::TaskBatch::FromTaskIds(obs.task_ids);
      at::manual_seed(2);
      const at::Tensor memory = at::randn({7, model->memory_size()});
      for (const bool training : {true, false}) {
        model->train(training);
        c10::InferenceMode inference;
        const bool fused = model->ActIsFused(memory);
        // MHR's several routing heads have no host form: Act is then the composite itself.
        EXPECT_EQ(fused, router != "mhr") << arch << "/" << router;
        at::manual_seed(5);
        const PolicyOutput a = model->Act(obs, memory, batch);
        const double next_a = at::rand({1}).item<double>();
        at::manual_seed(5);
        const PolicyOutput b = model->ActComposite(obs, memory, batch);
        const double next_b = at::rand({1}).item<double>();
        const std::string where = arch + "/" + router + (training ? " train" : " eval");
        EXPECT_EQ(next_a, next_b) << where << ": the paths consumed different random numbers";
        EXPECT_TRUE(at::allclose(a.log_probs, b.log_probs, 1e-5, 1e-5))
            << where << " " << (a.log_probs - b.log_probs).abs().max();
        EXPECT_TRUE(at::allclose(a.values, b.values, 1e-5, 1e-5)) << where;
        EXPECT_TRUE(at::allclose(a.memory, b.memory, 1e-5, 1e-5)) << where;
      }
    }
  }
  // With autograd on, Act must build the graph: it takes the composite path.
  ActorCritic model(Options("small", "poly", 3));
  EXPECT_FALSE(model->ActIsFused(at::zeros({2, model->memory_size()})));
}

TEST(ActorCritic, Bf16ConvolutionsAgreeWithFp32AndTrainEveryParameter) {
  // --precision bf16: bow_endpool_res takes the fused channels-last trunk, expert_filmcnn ATen's
  // ops on bf16 activations; both must give fp32 outputs near fp32's and gradients for the same
  // parameters, close in direction and size (bf16 keeps ~3 significant digits per layer).
  for (const std::string arch : {"bow_endpool_res", "expert_filmcnn"}) {
    at::manual_seed(5);
    ActorCritic model(Options(arch, "poly", 3));
    model->train();  // batch statistics, as in training
    const Observation obs = SyntheticBatch(12, 3, 4);
    const auto batch = skills::TaskBatch::FromTaskIds(obs.task_ids);
    const at::Tensor memory = at::zeros({12, model->memory_size()});
    const at::Tensor weights = at::randn({12, kNumActions});
    const auto params = model->parameters();
    auto run = [&](skills::ConvPrecision precision) {
      model->SetConvPrecision(precision);
      at::manual_seed(9);  // the same routing draws
      const PolicyOutput out = model->Act(obs, memory, batch);
      const at::Tensor loss = (out.log_probs * weights).sum() + out.values.sum();
      auto grads = torch::autograd::grad({loss}, params, {}, false, false, /*allow_unused=*/true);
      return std::make_tuple(out.log_probs, out.values, grads);
    };
    const auto [ref_logp, ref_values, ref_grads] = run(skills::ConvPrecision::kFloat32);
    const auto [logp, values, grads] = run(skills::ConvPrecision::kBFloat16);
    EXPECT_EQ(logp.scalar_type(), at::kFloat) << arch;
    EXPECT_LE((logp - ref_logp).abs().max().item<double>(), 0.05) << arch;
    EXPECT_LE((values - ref_values).abs().max().item<double>(), 0.05 * ref_values.abs().max().item<double>() + 1e-3)
        << arch;
    std::vector<at::Tensor> flat, ref_flat;
    for (size_t i = 0; i < params.size(); ++i) {
      ASSERT_EQ(grads[i].defined(), ref_grads[i].defined()) << arch << " parameter " << i;
      if (!grads[i].defined()) continue;
      EXPECT_TRUE(at::isfinite(grads[i]).all().item<bool>()) << arch << " parameter " << i;
      flat.push_back(grads[i].flatten());
      ref_flat.push_back(ref_grads[i].flatten());
    }
    const at::Tensor g = at::cat(flat), r = at::cat(ref_flat);
    // bf16 rounding amplified by batch norm over only 12 rows (and, for expert_filmcnn, 2x2
    // maps). Measured with oneDNN's direct kernels: 0.13 and 0.12; with the Winograd kernels
    // (skills/winograd_conv.h, whose rounding error is ~1.7x direct's): 0.12 and 0.21. A
    // gradient with a wrong layout or a lost term is off by ~1 or more.
    EXPECT_LE((g - r).norm().item<double>(), 0.3 * r.norm().item<double>()) << arch;
  }
}

TEST(ActorCritic, SuppliedInstructionEmbeddingsGiveTheSameStep) {
  // A rollout caches EncodeInstructions' rows and passes them to Act: with deterministic
  // routing this must be the same step as Act encoding them itself, and a wrong row count a
  // clear error.
  at::manual_seed(8);
  ActorCritic model(Options("small", "poly", 2));
  for (auto& p : model->parameters()) {
    torch::NoGradGuard no_grad;
    if (p.dim() >= 2) p.normal_(0, 0.3);  // non-zero skills, so text routing matters
  }
  model->eval();
  const Observation obs = SyntheticBatch(6, 2, 4);
  const auto batch = skills::TaskBatch::FromTaskIds(obs.task_ids);
  const at::Tensor memory = at::randn({6, model->memory_size()});
  const auto own = model->Act(obs, memory, batch);
  const auto supplied = model->Act(obs, memory, batch, model->EncodeInstructions(obs));
  EXPECT_TRUE(at::allclose(own.log_probs, supplied.log_probs, 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(own.memory, supplied.memory, 1e-6, 1e-6));
  const at::Tensor too_few = model->EncodeInstructions(obs).narrow(0, 0, 1);
  try {
    model->Act(obs, memory, batch, too_few);
    ADD_FAILURE() << "no error for a wrong number of instruction rows";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("distinct instructions"), std::string::npos) << e.what();
  }
}

TEST(ActorCritic, BowEndpoolResParameterCount) {
  // BabyAI 1.1 counts 1,270,536 with a 100-word table; skillgrid's has 33 rows (-67 x 128).
  ActorCritic model(Options("bow_endpool_res", "none", 1));
  EXPECT_EQ(model->NumParameters(), 1270536 - 67 * 128);
}

TEST(ActorCritic, RoutedModelHasPerLayerRouters) {
  ActorCritic model(Options("bow_endpool_res", "poly", 8));
  // Every conv, FiLM, GRU, LSTM and head Linear gets its own router: 6 convs + 4 FiLM + 2 GRU
  // + 2 LSTM + 4 heads.
  EXPECT_EQ(model->RouterParameters().size(), 18u);
  EXPECT_EQ(model->RoutingSnapshot().size(), 18u);
  // Router and network parameters partition the parameters.
  EXPECT_EQ(model->RouterParameters().size() + model->NetworkParameters().size(), model->parameters().size());
}

TEST(ActorCritic, FamiliesChooseWhatIsRouted) {
  ModelOptions o = Options("small", "poly", 2);
  o.routing().families({"heads"});
  ActorCritic model(o);
  EXPECT_EQ(model->RouterParameters().size(), 4u);
}

TEST(ActorCritic, RejectsBadOptions) {
  EXPECT_THROW(ActorCritic(ModelOptions("resnet")), std::invalid_argument);
  EXPECT_THROW(ActorCritic(Options("small", "magic", 2)), std::invalid_argument);
  ModelOptions o = Options("small", "poly", 2);
  o.routing().families({"conv", "tail"});
  EXPECT_THROW(ActorCritic{o}, std::invalid_argument);
  ModelOptions dense = Options("small", "poly", 2);
  dense.routing().inventory("sparse").density(2.0);
  try {
    ActorCritic model(dense);
    ADD_FAILURE() << "density 2 was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("density must be in (0, 1], got 2"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("2.000000"), std::string::npos) << e.what();
  }
}

TEST(ActorCritic, OptionsJsonRoundTrip) {
  ModelOptions o = Options("expert_filmcnn", "mhr", 4);
  o.routing().heads(4);
  EXPECT_EQ(ModelOptions::FromJson(o.ToJson()).ToJson(), o.ToJson());
  EXPECT_EQ(o.ToJson()["vocabulary"].size(), 33u);
}

TEST(Layers, LstmCellMatchesTorch) {
  RoutingOptions none;
  LstmCell cell(none, LayerFamily::kMemory, 5, 4);
  torch::nn::LSTMCell ref(torch::nn::LSTMCellOptions(5, 4));
  auto params = cell->named_parameters();
  {
    torch::NoGradGuard g;
    ref->weight_ih.copy_(params["ih.linear.weight"]);
    ref->bias_ih.copy_(params["ih.linear.bias"]);
    ref->weight_hh.copy_(params["hh.linear.weight"]);
    ref->bias_hh.copy_(params["hh.linear.bias"]);
  }
  const at::Tensor x = at::randn({3, 5});
  const at::Tensor h = at::randn({3, 4});
  const at::Tensor c = at::randn({3, 4});
  const at::Tensor ours = cell->forward(x, at::cat({h, c}, 1), skills::TaskBatch());
  auto [h2, c2] = ref->forward(x, std::make_tuple(h, c));
  EXPECT_TRUE(at::allclose(ours, at::cat({h2, c2}, 1), 1e-5, 1e-6));
}

TEST(Layers, InstructionEncoderMatchesTorchGruAtLastToken) {
  RoutingOptions none;
  InstructionEncoder enc(none, 10, 6, 5);
  torch::nn::GRU ref(torch::nn::GRUOptions(6, 5).batch_first(true));
  auto params = enc->named_parameters();
  {
    torch::NoGradGuard g;
    ref->named_parameters()["weight_ih_l0"].copy_(params["ih.linear.weight"]);
    ref->named_parameters()["bias_ih_l0"].copy_(params["ih.linear.bias"]);
    ref->named_parameters()["weight_hh_l0"].copy_(params["hh.linear.weight"]);
    ref->named_parameters()["bias_hh_l0"].copy_(params["hh.linear.bias"]);
  }
  // Row 0 has 4 tokens, row 1 has 2 (then padding): the output is taken at the last real token.
  const at::Tensor tokens = at::tensor({1, 2, 3, 4, 5, 6, 0, 0}, at::kLong).view({2, 4});
  const at::Tensor lengths = at::tensor({4, 2}, at::kLong);
  const at::Tensor ours = enc->forward(tokens, lengths, skills::TaskBatch());
  auto embedding = params["embedding.weight"];
  const at::Tensor out0 = std::get<0>(ref->forward(embedding.index_select(0, tokens[0]).unsqueeze(0)));
  const at::Tensor out1 = std::get<0>(ref->forward(embedding.index_select(0, tokens[1].narrow(0, 0, 2)).unsqueeze(0)));
  EXPECT_TRUE(at::allclose(ours[0], out0[0][3], 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(ours[1], out1[0][1], 1e-5, 1e-6));
}

// The instruction GRU without autograd (host buffers) against the op-by-op path it takes with
// autograd: same embeddings up to rounding and the same routing draws, routed or not.
TEST(Layers, InstructionEncoderHostPathMatchesTheOpByOpPathAndItsDraws) {
  for (const std::string router : {"none", "poly", "shared", "adamix", "mhr"}) {
    at::manual_seed(4);
    InstructionEncoder enc(RoutingOptions().router(router).n_tasks(3).n_skills(3).rank(2).heads(2), 33, 8, 12);
    // Three missions of different lengths, padded with 0, tasks 0, 2, 1.
    const at::Tensor tokens = at::tensor({3, 5, 7, 9, 2, 2, 4, 6, 0, 0, 8, 0, 0, 0, 0}, at::kLong).view({3, 5});
    const at::Tensor lengths = at::tensor({5, 3, 1}, at::kLong);
    const auto batch = skills::TaskBatch::FromTaskIds(at::tensor({0, 2, 1}, at::kLong));
    for (const bool training : {true, false}) {
      enc->train(training);
      at::manual_seed(9);
      const at::Tensor with_grad = enc->forward(tokens, lengths, batch).detach();
      const double next_a = at::rand({1}).item<double>();
      at::manual_seed(9);
      at::Tensor host;
      {
        c10::InferenceMode inference;
        host = enc->forward(tokens, lengths, batch);
      }
      const double next_b = at::rand({1}).item<double>();
      const std::string where = router + (training ? " train" : " eval");
      EXPECT_EQ(next_a, next_b) << where << ": the paths consumed different random numbers";
      ASSERT_EQ(host.sizes(), with_grad.sizes()) << where;
      EXPECT_TRUE(at::allclose(host, with_grad, 1e-5, 1e-6)) << where << " " << (host - with_grad).abs().max();
    }
  }
}

TEST(Layers, RoutedConvMatchesPlainConvWhenSkillsAreZero) {
  // A routed conv is a SkillConv2d; with zero-initialised skill outputs it is the plain
  // convolution of its base weights.
  RoutingOptions poly = RoutingOptions().router("poly").n_tasks(2).n_skills(3).rank(2);
  RoutedConv2d conv(poly, LayerFamily::kConv, 4, 6, 3, 1);
  const at::Tensor x = at::randn({5, 4, 7, 7});
  const auto batch = skills::TaskBatch::FromTaskIds(at::tensor({0, 1, 0, 1, 1}, at::kLong));
  conv->eval();
  const at::Tensor ours = conv->forward(x, batch);
  const auto base = conv->skill()->base();
  const at::Tensor ref = at::conv2d(x, base->weight, base->bias, {1, 1}, {1, 1});
  EXPECT_TRUE(at::allclose(ours, ref, 1e-4, 1e-5));
}

TEST(Layers, PreparedRoutedLinearEqualsItsForward) {
  // Preparing resolves routing once; in eval mode (deterministic routing) every Apply() must
  // equal the layer's own forward on the same batch, for mixed and single-task batches.
  torch::manual_seed(7);
  RoutingOptions poly = RoutingOptions().router("poly").n_tasks(3).n_skills(4).rank(2);
  RoutedLinear layer(poly, LayerFamily::kMemory, 6, 8);
  for (auto& p : layer->parameters()) {
    torch::NoGradGuard no_grad;
    p.normal_();  // non-zero skills, so routing matters
  }
  layer->eval();
  for (const auto& ids : {std::vector<int64_t>{2, 0, 2, 1, 0}, std::vector<int64_t>{1, 1, 1, 1, 1}}) {
    const auto batch = skills::TaskBatch::FromTaskIds(at::tensor(ids, at::kLong));
    const PreparedLinear prepared = layer->Prepare(batch);
    for (int step = 0; step < 2; ++step) {
      const at::Tensor x = at::randn({5, 6});
      EXPECT_TRUE(at::allclose(prepared.Apply(x), layer->forward(x, batch), 1e-5, 1e-6));
    }
  }
}

TEST(Observation, DeduplicatesInstructionsPerTask) {
  const Observation obs = SyntheticBatch(8, 2, 1);
  // Two missions x two tasks, but mission parity equals task parity here: 2 distinct pairs.
  EXPECT_EQ(obs.instr_tokens.size(0), 2);
  EXPECT_EQ(obs.instr_tokens.size(1), 4);
  EXPECT_EQ(obs.instr_index.size(0), 8);
  const Observation obs3 = SyntheticBatch(12, 3, 1);
  EXPECT_EQ(obs3.instr_tokens.size(0), 6);
}


// The same network twice, the second copy on the CUDA device: same options, the first's state.
std::pair<ActorCritic, ActorCritic> HostAndDeviceCopies(const ModelOptions& options) {
  at::manual_seed(3);
  ActorCritic host(options);
  ActorCritic device(options);
  {
    torch::NoGradGuard no_grad;
    auto params = device->named_parameters();
    for (const auto& item : host->named_parameters()) params[item.key()].copy_(item.value());
    auto buffers = device->named_buffers();
    for (const auto& item : host->named_buffers()) buffers[item.key()].copy_(item.value());
  }
  device->to(at::Device(at::kCUDA));
  return {host, device};
}

// One Act on each copy; the device's outputs come back to the host.
std::pair<PolicyOutput, PolicyOutput> ActOnBoth(ActorCritic& host, ActorCritic& device, const Observation& obs,
                                                const at::Tensor& memory) {
  const at::Device cuda(at::kCUDA);
  const PolicyOutput h = host->Act(obs, memory, skills::TaskBatch::FromTaskIds(obs.task_ids));
  const PolicyOutput d =
      device->Act(obs.To(cuda), memory.to(cuda), skills::TaskBatch::FromTaskIds(obs.task_ids.to(cuda)));
  EXPECT_EQ(d.log_probs.device().type(), at::kCUDA);
  return {h, d};
}

TEST(ActorCritic_CUDA, ActMatchesTheCpuForEveryArchitectureAndRouter) {
  // Without autograd the CPU takes the fused host paths (trunk, Act, instruction GRU); the device
  // must take ATen's and agree with them.
  SKILLGRID_REQUIRE_CUDA();
  using cuda_test::RelativeMaxError;
  torch::NoGradGuard no_grad;
  for (const std::string arch : {"bow_endpool_res", "expert_filmcnn", "small"}) {
    for (const std::string router : {"none", "shared", "private", "poly", "mhr", "mu", "adamix"}) {
      auto [host, device] = HostAndDeviceCopies(Options(arch, router, 3));
      host->eval();  // batch-norm running statistics and no routing noise
      device->eval();
      const Observation obs = SyntheticBatch(6, 3, 1);
      const at::Tensor memory = at::randn({6, host->memory_size()});
      const auto [h, d] = ActOnBoth(host, device, obs, memory);
      EXPECT_LE(RelativeMaxError(d.log_probs, h.log_probs), cuda_test::kCudaTolerance) << arch << "/" << router;
      EXPECT_LE(RelativeMaxError(d.values, h.values), cuda_test::kCudaTolerance) << arch << "/" << router;
      EXPECT_LE(RelativeMaxError(d.memory, h.memory), cuda_test::kCudaTolerance) << arch << "/" << router;
      // skills.json snapshots read the routers' eval weights back from the device.
      const nlohmann::json a = host->RoutingSnapshot(), b = device->RoutingSnapshot();
      ASSERT_EQ(a.size(), b.size()) << arch << "/" << router;
      for (const auto& [layer, rows] : a.items()) {
        ASSERT_EQ(b[layer].size(), rows.size()) << arch << "/" << layer;
        for (size_t t = 0; t < rows.size(); ++t) {
          for (size_t k = 0; k < rows[t].size(); ++k) {
            EXPECT_NEAR(b[layer][t][k].get<double>(), rows[t][k].get<double>(), 1e-5) << arch << "/" << layer;
          }
        }
      }
    }
  }
}

TEST(ActorCritic_CUDA, GradientsMatchTheCpu) {
  // Training mode (batch statistics) with routers that draw no noise, and Poly/MHR in eval mode
  // (deterministic weights, gradients still reach the logits).
  SKILLGRID_REQUIRE_CUDA();
  using cuda_test::RelativeMaxError;
  for (const std::string arch : {"bow_endpool_res", "expert_filmcnn", "small"}) {
    for (const std::string router : {"none", "private", "mu", "poly", "mhr"}) {
      auto [host, device] = HostAndDeviceCopies(Options(arch, router, 3));
      const bool training = router != "poly" && router != "mhr";
      host->train(training);
      device->train(training);
      const Observation obs = SyntheticBatch(8, 3, 2);
      const at::Tensor memory = at::randn({8, host->memory_size()});
      const at::Tensor weights = at::randn({8, kNumActions});
      const auto [h, d] = ActOnBoth(host, device, obs, memory);
      ((h.log_probs * weights).sum() + h.values.sum()).backward();
      ((d.log_probs * weights.to(at::kCUDA)).sum() + d.values.sum()).backward();
      auto host_params = host->named_parameters();
      for (const auto& item : device->named_parameters()) {
        const at::Tensor g = item.value().grad(), ref = host_params[item.key()].grad();
        ASSERT_EQ(g.defined(), ref.defined()) << arch << "/" << router << " " << item.key();
        if (!g.defined()) continue;
        EXPECT_LE((g.cpu() - ref).norm().item<double>(),
                  cuda_test::kCudaGradientTolerance * ref.norm().item<double>() + cuda_test::kCudaGradientFloor)
            << arch << "/" << router << " " << item.key();
      }
    }
  }
}

TEST(ActorCritic_CUDA, Bf16ConvolutionsOnTheDeviceAgreeWithFp32AndKeepFp32Parameters) {
  // --precision bf16 --device cuda: cuDNN's bf16 convolutions (no CPU trunk kernels), fp32
  // outputs near the host's fp32 ones and fp32 gradients for every parameter that has one there.
  SKILLGRID_REQUIRE_CUDA();
  for (const std::string arch : {"bow_endpool_res", "expert_filmcnn"}) {
    auto [host, device] = HostAndDeviceCopies(Options(arch, "none", 3));
    device->SetConvPrecision(skills::ConvPrecision::kBFloat16);
    host->train();
    device->train();
    const Observation obs = SyntheticBatch(12, 3, 4);
    const at::Tensor memory = at::zeros({12, host->memory_size()});
    const at::Tensor weights = at::randn({12, kNumActions});
    const auto [h, d] = ActOnBoth(host, device, obs, memory);
    EXPECT_EQ(d.log_probs.scalar_type(), at::kFloat) << arch;
    EXPECT_LE((d.log_probs.cpu() - h.log_probs).abs().max().item<double>(), 0.05) << arch;
    ((h.log_probs * weights).sum() + h.values.sum()).backward();
    ((d.log_probs * weights.to(at::kCUDA)).sum() + d.values.sum()).backward();
    std::vector<at::Tensor> flat, ref_flat;
    auto host_params = host->named_parameters();
    for (const auto& item : device->named_parameters()) {
      EXPECT_EQ(item.value().scalar_type(), at::kFloat) << arch << " " << item.key();
      const at::Tensor g = item.value().grad(), ref = host_params[item.key()].grad();
      ASSERT_EQ(g.defined(), ref.defined()) << arch << " " << item.key();
      if (!g.defined()) continue;
      EXPECT_EQ(g.scalar_type(), at::kFloat) << arch << " " << item.key();
      flat.push_back(g.cpu().flatten());
      ref_flat.push_back(ref.flatten());
    }
    const at::Tensor g = at::cat(flat), r = at::cat(ref_flat);
    EXPECT_LE((g - r).norm().item<double>(), 0.3 * r.norm().item<double>()) << arch;  // as the CPU bf16 test
  }
}

}  // namespace
}  // namespace skillgrid::agents
