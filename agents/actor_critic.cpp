#include "agents/actor_critic.h"

#include <cmath>
#include <set>
#include <stdexcept>

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>

#include "agents/recurrent_kernels.h"
#include "agents/small_cnn.h"
#include "agents/trunk_kernels.h"
#include "envs/tokenizer.h"
#include "skills/router.h"
#include "skills/skill_conv_embedding.h"
#include "skills/skill_linear.h"

namespace skillgrid::agents {

namespace {
// BabyAI's ImageBOWEmbedding: value + 147 * channel indexes one shared table.
constexpr int64_t kBowMaxValue = 147;

// bow_endpool_res's embedding rows of every cell: object, colour and state ids offset into the
// three thirds of the table, (B, 7, 7, 3) int64.
at::Tensor BowIndices(const Observation& obs) {
  const at::Tensor offsets = at::arange(3, obs.images.options().dtype(at::kLong)) * kBowMaxValue;
  return obs.images.to(at::kLong) + offsets;
}
}  // namespace

const std::vector<std::string>& ModelArchitectures() {
  static const std::vector<std::string> archs = {"bow_endpool_res", "expert_filmcnn", "small"};
  return archs;
}

ModelOptions::ModelOptions(std::string arch) : arch_(std::move(arch)) {
  if (arch_ == "small") {
    image_dim_ = 64;
    word_dim_ = 32;
    memory_dim_ = 64;
  }
}

void ModelOptions::Validate() const {
  bool known = false;
  for (const auto& a : ModelArchitectures()) known = known || a == arch();
  if (!known) {
    throw std::invalid_argument("unknown model '" + arch() + "' (valid: bow_endpool_res, expert_filmcnn, small)");
  }
  if (image_dim() < 1 || instr_dim() < 1 || word_dim() < 1 || memory_dim() < 1 || head_dim() < 1) {
    throw std::invalid_argument("model: every layer size must be >= 1");
  }
  if (arch() == "small" && image_dim() != 64) {
    throw std::invalid_argument("model: the small preset's CNN gives image_dim 64, got " + std::to_string(image_dim()));
  }
  if (vocab_size() < envs::MissionTokenizer::VocabSize()) {
    throw std::invalid_argument("model: vocab_size " + std::to_string(vocab_size()) + " is smaller than the tokenizer's " +
                                std::to_string(envs::MissionTokenizer::VocabSize()));
  }
  routing().Validate();
}

nlohmann::json ModelOptions::ToJson() const {
  return {{"arch", arch()},
          {"image_dim", image_dim()},
          {"instr_dim", instr_dim()},
          {"word_dim", word_dim()},
          {"memory_dim", memory_dim()},
          {"head_dim", head_dim()},
          {"vocab_size", vocab_size()},
          {"num_actions", kNumActions},
          {"vocabulary", envs::MissionTokenizer::Words()},
          {"routing", routing().ToJson()}};
}

ModelOptions ModelOptions::FromJson(const nlohmann::json& j) {
  ModelOptions o(j.at("arch").get<std::string>());
  if (j.contains("image_dim")) o.image_dim(j.at("image_dim").get<int64_t>());
  if (j.contains("instr_dim")) o.instr_dim(j.at("instr_dim").get<int64_t>());
  if (j.contains("word_dim")) o.word_dim(j.at("word_dim").get<int64_t>());
  if (j.contains("memory_dim")) o.memory_dim(j.at("memory_dim").get<int64_t>());
  if (j.contains("head_dim")) o.head_dim(j.at("head_dim").get<int64_t>());
  if (j.contains("vocab_size")) o.vocab_size(j.at("vocab_size").get<int64_t>());
  if (j.contains("routing")) o.routing(RoutingOptions::FromJson(j.at("routing")));
  return o;
}

// ----------------------------------------------------------------------------------------------
ActorCriticImpl::ActorCriticImpl(ModelOptions options_) : options(std::move(options_)) {
  options.Validate();
  reset();
}

void ActorCriticImpl::reset() {
  const auto& r = options.routing();
  const int64_t c = options.image_dim();
  films_.clear();
  if (options.arch() == "bow_endpool_res" || options.arch() == "expert_filmcnn") {
    const bool bow = options.arch() == "bow_endpool_res";
    if (bow) {
      bow_ = register_module("bow", torch::nn::Embedding(3 * kBowMaxValue, c));
      conv1_ = register_module("conv1", RoutedConv2d(r, LayerFamily::kConv, c, c, 3, 1));
    } else {
      conv1_ = register_module("conv1", RoutedConv2d(r, LayerFamily::kConv, 3, c, 2, 1));
    }
    bn1_ = register_module("bn1", torch::nn::BatchNorm2d(c));
    conv2_ = register_module("conv2", RoutedConv2d(r, LayerFamily::kConv, c, c, 3, 1));
    bn2_ = register_module("bn2", torch::nn::BatchNorm2d(c));
    for (int k = 0; k < 2; ++k) {
      const std::string p = "film" + std::to_string(k) + "_";
      Film f;
      f.conv1 = register_module(p + "conv1", RoutedConv2d(r, LayerFamily::kConv, c, 128, 3, 1));
      f.bn1 = register_module(p + "bn1", torch::nn::BatchNorm2d(128));
      f.conv2 = register_module(p + "conv2", RoutedConv2d(r, LayerFamily::kConv, 128, c, 3, 1));
      f.bn2 = register_module(p + "bn2", torch::nn::BatchNorm2d(c));
      f.gamma = register_module(p + "gamma", RoutedLinear(r, LayerFamily::kFilm, options.instr_dim(), c));
      f.beta = register_module(p + "beta", RoutedLinear(r, LayerFamily::kFilm, options.instr_dim(), c));
      InitBabyAILinear(*f.gamma);
      InitBabyAILinear(*f.beta);
      films_.push_back(f);
    }
  } else {  // small
    sconv1_ = register_module("conv1", RoutedConv2d(r, LayerFamily::kConv, 3, 16, 2, 0));
    sconv2_ = register_module("conv2", RoutedConv2d(r, LayerFamily::kConv, 16, 32, 2, 0));
    sconv3_ = register_module("conv3", RoutedConv2d(r, LayerFamily::kConv, 32, 64, 2, 0));
  }
  instr_ = register_module("instr", InstructionEncoder(r, options.vocab_size(), options.word_dim(), options.instr_dim()));
  memory_ = register_module("memory", LstmCell(r, LayerFamily::kMemory, c, options.memory_dim()));
  const int64_t emb = options.memory_dim() + (options.arch() == "small" ? options.instr_dim() : 0);
  actor1_ = register_module("actor1", RoutedLinear(r, LayerFamily::kHeads, emb, options.head_dim()));
  actor2_ = register_module("actor2", RoutedLinear(r, LayerFamily::kHeads, options.head_dim(), kNumActions));
  critic1_ = register_module("critic1", RoutedLinear(r, LayerFamily::kHeads, emb, options.head_dim()));
  critic2_ = register_module("critic2", RoutedLinear(r, LayerFamily::kHeads, options.head_dim(), 1));
  for (auto* l : {actor1_.get(), actor2_.get(), critic1_.get(), critic2_.get()}) InitBabyAILinear(*l);
}

at::Tensor ActorCriticImpl::ImageTrunk(const Observation& obs, const at::Tensor& instr_rows,
                                       const skills::TaskBatch& batch) {
  namespace F = torch::nn::functional;
  const std::string& arch = options.arch();
  if (arch == "small") {
    if (SmallCnnTrunkSupports(sconv1_->parameters().front()) && obs.images.device().is_cpu()) {
      // One op for the whole trunk; the kernels are drawn in the composite's order (one routing
      // draw per layer), so both paths consume the same random numbers.
      const auto [k1, b1] = sconv1_->BatchKernels(batch);
      const auto [k2, b2] = sconv2_->BatchKernels(batch);
      const auto [k3, b3] = sconv3_->BatchKernels(batch);
      const at::Tensor images = obs.images.to(k1.scalar_type());
      const bool per_task = k1.size(0) > 1 || k2.size(0) > 1 || k3.size(0) > 1;
      if (!per_task) return SmallCnnTrunk(images, {k1, b1}, {k2, b2}, {k3, b3}, {images.size(0)});
      return batch.UngroupRows(
          SmallCnnTrunk(batch.GroupRows(images), {k1, b1}, {k2, b2}, {k3, b3}, batch.rows_per_task));
    }
    at::Tensor x = obs.images.permute({0, 3, 1, 2}).to(at::kFloat);
    x = at::relu(sconv1_->forward(x, batch));
    x = at::max_pool2d(x, {2, 2});
    x = at::relu(sconv2_->forward(x, batch));
    x = at::relu(sconv3_->forward(x, batch));
    return x.flatten(1);
  }
  if (arch == "bow_endpool_res" && conv1_->precision() == skills::ConvPrecision::kBFloat16 &&
      obs.images.device().is_cpu()) {
    return BowTrunkBf16(obs, instr_rows, batch);
  }
  at::Tensor x;
  if (arch == "bow_endpool_res") {
    x = bow_->forward(BowIndices(obs)).sum(3).permute({0, 3, 1, 2});  // (B, C, 7, 7), channels-last strides
    // fp32 oneDNN runs NCHW; bf16 converts to channels-last bfloat16 in one pass anyway.
    if (conv1_->precision() == skills::ConvPrecision::kFloat32) x = x.contiguous();
    x = at::relu(bn1_->forward(conv1_->forward(x, batch)));
    x = at::relu(bn2_->forward(conv2_->forward(x, batch)));
  } else {
    x = obs.images.permute({0, 3, 1, 2}).to(at::kFloat);
    x = at::max_pool2d(at::relu(bn1_->forward(conv1_->forward(x, batch))), {2, 2}, {2, 2});
    x = at::max_pool2d(at::relu(bn2_->forward(conv2_->forward(x, batch))), {2, 2}, {2, 2});
  }
  const bool residual = arch == "bow_endpool_res";
  for (auto& f : films_) {
    at::Tensor y = at::relu(f.bn1->forward(f.conv1->forward(x, batch)));
    y = f.conv2->forward(y, batch);
    // (In bf16 precision the activations are bfloat16: FiLM follows them rather than promote.)
    const at::Tensor g = f.gamma->forward(instr_rows, batch).unsqueeze(2).unsqueeze(3).to(y.scalar_type());
    const at::Tensor b = f.beta->forward(instr_rows, batch).unsqueeze(2).unsqueeze(3).to(y.scalar_type());
    y = at::relu(f.bn2->forward(y * g + b));
    x = residual ? y + x : y;
  }
  if (residual) {
    x = at::max_pool2d(x, {7, 7}, {2, 2});
  } else {
    x = at::max_pool2d(x, {2, 2}, {2, 2});
  }
  return at::relu(x).flatten(1).to(at::kFloat);
}

skills::ConvPrecision ActorCriticImpl::ConvPrecision() const {
  return (conv1_.is_empty() ? sconv1_ : conv1_)->precision();  // every conv holds the same
}

void ActorCriticImpl::SetConvPrecision(skills::ConvPrecision precision) {
  for (RoutedConv2d* conv : {&conv1_, &conv2_, &sconv1_, &sconv2_, &sconv3_}) {
    if (!conv->is_empty()) (*conv)->set_precision(precision);
  }
  for (auto& f : films_) {
    f.conv1->set_precision(precision);
    f.conv2->set_precision(precision);
  }
}

at::Tensor ActorCriticImpl::BowTrunkBf16(const Observation& obs, const at::Tensor& instr_rows,
                                         const skills::TaskBatch& batch) {
  // The same network as ImageTrunk's bow_endpool_res branch, with channels-last bfloat16
  // activations between bf16 convolutions and fused norm/FiLM/ReLU kernels.
  at::Tensor x = BowEmbeddingBf16(BowIndices(obs), bow_->weight);
  x = BatchNormReluBf16(conv1_->forward(x, batch), *bn1_);
  x = BatchNormReluBf16(conv2_->forward(x, batch), *bn2_);
  for (auto& f : films_) {
    const at::Tensor y = BatchNormReluBf16(f.conv1->forward(x, batch), *f.bn1);
    x = BatchNormReluBf16(f.conv2->forward(y, batch), *f.bn2, f.gamma->forward(instr_rows, batch),
                          f.beta->forward(instr_rows, batch), x);
  }
  return GlobalMaxReluBf16(x);
}

at::Tensor ActorCriticImpl::EncodeInstructions(const Observation& obs) {
  skills::TaskBatch instr_batch;
  if (options.routing().Routes(LayerFamily::kText)) instr_batch = skills::TaskBatch::FromTaskIds(obs.instr_tasks);
  return instr_->forward(obs.instr_tokens, obs.instr_lengths, instr_batch);
}

Encoded ActorCriticImpl::Encode(const Observation& obs, const skills::TaskBatch& batch,
                                const at::Tensor& instr_unique) {
  TORCH_CHECK(!instr_unique.defined() || instr_unique.size(0) == obs.instr_tokens.size(0),
              "Encode: instr_unique has ", instr_unique.defined() ? instr_unique.size(0) : 0, " rows but obs has ",
              obs.instr_tokens.size(0), " distinct instructions");
  const at::Tensor unique = instr_unique.defined() ? instr_unique : EncodeInstructions(obs);
  const at::Tensor instr_rows = unique.index_select(0, obs.instr_index);
  Encoded enc;
  enc.features = ImageTrunk(obs, instr_rows, batch);
  if (options.arch() == "small") enc.head_extra = instr_rows;
  return enc;
}

at::Tensor ActorCriticImpl::MemoryGates(const Encoded& enc, const skills::TaskBatch& batch) {
  return memory_->InputGates(enc.features, batch);
}

at::Tensor ActorCriticImpl::StepMemory(const at::Tensor& gates, const at::Tensor& memory,
                                       const skills::TaskBatch& batch) {
  return memory_->forward(at::Tensor(), memory, batch, gates);
}

at::Tensor ActorCriticImpl::UnrollMemory(const at::Tensor& gates, const at::Tensor& memory, const at::Tensor& resets,
                                         const skills::TaskBatch& sequence_batch) {
  return memory_->Unroll(gates, memory, resets, memory_->PrepareRecurrent(sequence_batch));
}

PolicyOutput ActorCriticImpl::Heads(const Encoded& enc, const at::Tensor& memory, const skills::TaskBatch& batch) {
  at::Tensor emb = memory.narrow(1, 0, options.memory_dim());
  if (enc.head_extra.defined()) emb = at::cat({emb, enc.head_extra}, 1);
  PolicyOutput out;
  out.log_probs = at::log_softmax(actor2_->forward(Tanh(actor1_->forward(emb, batch)), batch), 1);
  out.values = critic2_->forward(Tanh(critic1_->forward(emb, batch)), batch).squeeze(1);
  return out;
}

PolicyOutput ActorCriticImpl::Act(const Observation& obs, const at::Tensor& memory, const skills::TaskBatch& batch,
                                  const at::Tensor& instr_unique) {
  if (ActIsFused(memory)) return ActFused(obs, memory, batch, instr_unique);
  return ActComposite(obs, memory, batch, instr_unique);
}

PolicyOutput ActorCriticImpl::ActComposite(const Observation& obs, const at::Tensor& memory,
                                           const skills::TaskBatch& batch, const at::Tensor& instr_unique) {
  const Encoded enc = Encode(obs, batch, instr_unique);
  const at::Tensor new_memory = StepMemory(MemoryGates(enc, batch), memory, batch);
  PolicyOutput out = Heads(enc, new_memory, batch);
  out.memory = new_memory;
  return out;
}

std::vector<at::Tensor> ActorCriticImpl::RouterParameters() const {
  std::vector<at::Tensor> out;
  std::set<const void*> seen;
  for (const auto& m : modules(/*include_self=*/false)) {
    const auto* router = dynamic_cast<const skills::RouterImpl*>(m.get());
    if (router == nullptr) continue;
    for (const auto& p : router->parameters()) {
      if (p.requires_grad() && seen.insert(p.unsafeGetTensorImpl()).second) out.push_back(p);
    }
  }
  return out;
}

std::vector<at::Tensor> ActorCriticImpl::NetworkParameters() const {
  std::set<const void*> routers;
  for (const auto& p : RouterParameters()) routers.insert(p.unsafeGetTensorImpl());
  std::vector<at::Tensor> out;
  for (const auto& p : parameters()) {
    if (p.requires_grad() && routers.count(p.unsafeGetTensorImpl()) == 0) out.push_back(p);
  }
  return out;
}

int64_t ActorCriticImpl::NumParameters() const {
  int64_t n = 0;
  for (const auto& p : parameters()) {
    if (p.requires_grad()) n += p.numel();
  }
  return n;
}

nlohmann::json ActorCriticImpl::RoutingSnapshot() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& item : named_modules("", /*include_self=*/false)) {
    skills::Router router{nullptr};
    if (const auto* linear = dynamic_cast<const skills::SkillLinearImpl*>(item.value().get())) router = linear->router();
    if (const auto* conv = dynamic_cast<const skills::SkillConv2dImpl*>(item.value().get())) router = conv->router();
    if (router.is_empty()) continue;
    const at::Tensor w = router->EvalWeights().detach().to(at::kFloat).mean(1).cpu().contiguous();
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t t = 0; t < w.size(0); ++t) {
      std::vector<float> row(w[t].data_ptr<float>(), w[t].data_ptr<float>() + w.size(1));
      rows.push_back(row);
    }
    out[item.key()] = rows;
  }
  return out;
}

at::Tensor SampleActions(const at::Tensor& log_probs) {
  TORCH_CHECK(log_probs.dim() == 2 && log_probs.size(1) > 0, "SampleActions: log_probs must be (N, A) with A > 0, got ",
              log_probs.sizes());
  if (!log_probs.device().is_cpu()) return at::multinomial(log_probs.exp(), 1).squeeze(1);
  const at::Tensor probs = log_probs.exp().to(at::kDouble).contiguous();
  const int64_t n = probs.size(0), a = probs.size(1);
  const at::Tensor uniform = at::rand({n}, probs.options());
  at::Tensor actions = at::empty({n}, probs.options().dtype(at::kLong));
  const double* p = probs.data_ptr<double>();
  const double* u = uniform.data_ptr<double>();
  int64_t* out = actions.data_ptr<int64_t>();
  for (int64_t r = 0; r < n; ++r) {
    const double* row = p + r * a;
    double total = 0.0;
    for (int64_t j = 0; j < a; ++j) total += row[j];
    TORCH_CHECK(std::isfinite(total) && total > 0.0, "SampleActions: the probabilities of row ", r, " sum to ", total,
                " (the policy gave non-finite or all-zero probabilities)");
    const double target = u[r] * total;
    // A category with probability 0 is never picked: the running sum cannot pass the target there.
    int64_t pick = -1, last_positive = 0;
    double cumulative = 0.0;
    for (int64_t j = 0; j < a; ++j) {
      if (row[j] > 0.0) last_positive = j;
      cumulative += row[j];
      if (pick < 0 && cumulative > target) pick = j;
    }
    out[r] = pick >= 0 ? pick : last_positive;  // target rounded up to the total: the last category
  }
  return actions;
}

}  // namespace skillgrid::agents
