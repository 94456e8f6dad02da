#include "agents/layers.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <torch/autograd.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>

#include "agents/host_linear.h"
#include "skills/expert_allocation.h"
#include "skills/inventory.h"
#include "skills/router.h"

namespace skillgrid::agents {

namespace {

const char* const kRouters[] = {"none", "shared", "private", "expert", "poly", "mhr", "mu", "adamix"};
const char* const kInventories[] = {"lowrank", "dense", "sparse"};

// Re-draws every parameter of a recurrent gate layer U(-1/sqrt(h), 1/sqrt(h)) as torch's RNNs do.
void InitRecurrent(RoutedLinearImpl& layer, int64_t hidden) {
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden));
  layer.weight().uniform_(-bound, bound);
  if (layer.bias().defined()) layer.bias().uniform_(-bound, bound);
}

// Largest divisor of `heads` that also divides both sizes.
int64_t FittingHeads(int64_t heads, int64_t in, int64_t out) {
  for (int64_t h = heads; h > 1; --h) {
    if (heads % h == 0 && in % h == 0 && out % h == 0) return h;
  }
  return 1;
}

}  // namespace

std::string LayerFamilyName(LayerFamily family) {
  switch (family) {
    case LayerFamily::kConv: return "conv";
    case LayerFamily::kFilm: return "film";
    case LayerFamily::kText: return "text";
    case LayerFamily::kMemory: return "memory";
    case LayerFamily::kHeads: return "heads";
  }
  return "?";
}

const std::vector<LayerFamily>& AllLayerFamilies() {
  static const std::vector<LayerFamily> all = {LayerFamily::kConv, LayerFamily::kFilm, LayerFamily::kText,
                                               LayerFamily::kMemory, LayerFamily::kHeads};
  return all;
}

LayerFamily ParseLayerFamily(const std::string& name) {
  for (LayerFamily f : AllLayerFamilies()) {
    if (LayerFamilyName(f) == name) return f;
  }
  throw std::invalid_argument("unknown layer family '" + name + "' (valid: conv, film, text, memory, heads)");
}

bool RoutingOptions::Routes(LayerFamily family) const {
  if (router() == "none") return false;
  const std::string name = LayerFamilyName(family);
  for (const auto& f : families()) {
    if (f == name) return true;
  }
  return false;
}

void RoutingOptions::Validate() const {
  bool known = false;
  for (const char* r : kRouters) known = known || router() == r;
  if (!known) {
    throw std::invalid_argument("unknown router '" + router() +
                                "' (valid: none, shared, private, expert, poly, mhr, mu, adamix)");
  }
  known = false;
  for (const char* r : kInventories) known = known || inventory() == r;
  if (!known) throw std::invalid_argument("unknown skill inventory '" + inventory() + "' (valid: lowrank, dense, sparse)");
  if (n_tasks() < 1) throw std::invalid_argument("routing: n_tasks must be >= 1, got " + std::to_string(n_tasks()));
  if (n_skills() < 1) throw std::invalid_argument("routing: skills must be >= 1, got " + std::to_string(n_skills()));
  if (rank() < 1) throw std::invalid_argument("routing: rank must be >= 1, got " + std::to_string(rank()));
  if (heads() < 1) throw std::invalid_argument("routing: heads must be >= 1, got " + std::to_string(heads()));
  if (!(density() > 0.0 && density() <= 1.0)) {
    std::ostringstream value;  // as typed ("2", "0.05"), not std::to_string's six decimals
    value << std::setprecision(10) << density();
    throw std::invalid_argument("routing: density must be in (0, 1], got " + value.str());
  }
  for (const auto& f : families()) ParseLayerFamily(f);
  if (router() == "expert") {
    if (static_cast<int64_t>(task_names().size()) != n_tasks()) {
      throw std::invalid_argument("routing: the expert router needs the level names of all tasks");
    }
    try {
      skills::AllocationPreset("expert", task_names());
    } catch (const std::exception& e) {
      throw std::invalid_argument(std::string("routing: the expert allocation covers only Polytropon's eight levels: ") +
                                  e.what());
    }
  }
}

nlohmann::json RoutingOptions::ToJson() const {
  return {{"router", router()},   {"n_tasks", n_tasks()}, {"n_skills", n_skills()},
          {"inventory", inventory()}, {"rank", rank()},   {"density", density()},
          {"heads", heads()},     {"families", families()}, {"task_names", task_names()}};
}

RoutingOptions RoutingOptions::FromJson(const nlohmann::json& j) {
  RoutingOptions o;
  if (j.contains("router")) o.router(j.at("router").get<std::string>());
  if (j.contains("n_tasks")) o.n_tasks(j.at("n_tasks").get<int64_t>());
  if (j.contains("n_skills")) o.n_skills(j.at("n_skills").get<int64_t>());
  if (j.contains("inventory")) o.inventory(j.at("inventory").get<std::string>());
  if (j.contains("rank")) o.rank(j.at("rank").get<int64_t>());
  if (j.contains("density")) o.density(j.at("density").get<double>());
  if (j.contains("heads")) o.heads(j.at("heads").get<int64_t>());
  if (j.contains("families")) o.families(j.at("families").get<std::vector<std::string>>());
  if (j.contains("task_names")) o.task_names(j.at("task_names").get<std::vector<std::string>>());
  return o;
}

skills::SkillLinearOptions MakeSkillLinearOptions(const RoutingOptions& r, int64_t in, int64_t out, bool bias) {
  using skills::RouterOptions;
  using skills::SkillInventoryOptions;
  const int64_t t = r.n_tasks();
  RouterOptions router = RouterOptions::Poly(t, r.n_skills());
  if (r.router() == "shared") {
    router = RouterOptions::Shared(t);
  } else if (r.router() == "private") {
    router = RouterOptions::Private(t);
  } else if (r.router() == "expert") {
    router = RouterOptions::Fixed(skills::AllocationPreset("expert", r.task_names()));
  } else if (r.router() == "mhr") {
    router = RouterOptions::Mhr(t, r.n_skills(), FittingHeads(r.heads(), in, out));
  } else if (r.router() == "mu") {
    router = RouterOptions::Mu(t, r.n_skills());
  } else if (r.router() == "adamix") {
    router = RouterOptions::AdaMix(t, r.n_skills());
  }
  SkillInventoryOptions inventory = SkillInventoryOptions::LowRank(r.rank());
  if (r.inventory() == "dense") inventory = SkillInventoryOptions::Dense();
  if (r.inventory() == "sparse") inventory = SkillInventoryOptions::Sparse(r.density());
  return skills::SkillLinearOptions(in, out).bias(bias).routing(router).skills(inventory);
}

// ----------------------------------------------------------------------------------------------
RoutedLinearImpl::RoutedLinearImpl(const RoutingOptions& routing, LayerFamily family, int64_t in, int64_t out,
                                   bool bias)
    : routing_(routing), family_(family), in_(in), out_(out), bias_(bias) {
  reset();
}

void RoutedLinearImpl::reset() {
  if (routing_.Routes(family_)) {
    skill_ = register_module("skill", skills::SkillLinear(MakeSkillLinearOptions(routing_, in_, out_, bias_)));
    plain_ = nullptr;
  } else {
    plain_ = register_module("linear", torch::nn::Linear(torch::nn::LinearOptions(in_, out_).bias(bias_)));
    skill_ = nullptr;
  }
}

at::Tensor RoutedLinearImpl::forward(const at::Tensor& x, const skills::TaskBatch& batch) {
  if (!skill_.is_empty()) return skill_->forward(x, batch);
  return plain_->forward(x);
}

PreparedLinear RoutedLinearImpl::Prepare(const skills::TaskBatch& batch) {
  PreparedLinear p;
  if (skill_.is_empty()) {
    p.plain = plain_;
  } else {
    p.skill = skill_->Prepare(batch);
  }
  return p;
}

at::Tensor PreparedLinear::Apply(const at::Tensor& x) const {
  return plain.is_empty() ? skill.Apply(x) : at::linear(x, plain->weight, plain->bias);
}

bool PreparedLinear::ToRecurrentMap(RecurrentMap* map) const {
  if (!plain.is_empty()) {
    *map = RecurrentMap{plain->weight, plain->bias, {}, {}, {}};
    return true;
  }
  if (!skill.has_matmul_form()) return false;
  *map = RecurrentMap{skill.weight(), skill.bias(), skill.a(), skill.b(), skill.mask()};
  return true;
}

at::Tensor& RoutedLinearImpl::weight() { return skill_.is_empty() ? plain_->weight : skill_->base()->weight; }

at::Tensor& RoutedLinearImpl::bias() { return skill_.is_empty() ? plain_->bias : skill_->base()->bias; }

void InitBabyAILinear(RoutedLinearImpl& layer) {
  torch::NoGradGuard no_grad;
  at::Tensor& w = layer.weight();
  w.normal_(0.0, 1.0);
  w.div_(w.pow(2).sum(1, /*keepdim=*/true).sqrt());
  if (layer.bias().defined()) layer.bias().zero_();
}

// ----------------------------------------------------------------------------------------------
RoutedConv2dImpl::RoutedConv2dImpl(const RoutingOptions& routing, LayerFamily family, int64_t in, int64_t out,
                                   int64_t kernel, int64_t padding)
    : routing_(routing), family_(family), in_(in), out_(out), kernel_(kernel), padding_(padding) {
  reset();
}

void RoutedConv2dImpl::reset() {
  if (routing_.Routes(family_)) {
    // SkillConv2d splits heads over channels, so the heads must fit the channel counts (a head
    // count that fits in * k * k but not `in` failed for the small model's 3-channel input).
    const auto linear = MakeSkillLinearOptions(routing_, in_, out_, true);
    skill_ = register_module("skill", skills::SkillConv2d(skills::SkillConv2dOptions(in_, out_, kernel_)
                                                             .padding(padding_)
                                                             .routing(linear.routing())
                                                             .skills(linear.skills())
                                                             .precision(precision_)));
    plain_ = nullptr;
  } else {
    plain_ = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_, out_, kernel_).padding(padding_)));
    skill_ = nullptr;
  }
}

at::Tensor RoutedConv2dImpl::forward(const at::Tensor& x, const skills::TaskBatch& batch) {
  if (!skill_.is_empty()) return skill_->forward(x, batch);
  return skills::Conv2dInPrecision(x, plain_->weight, plain_->bias, 1, padding_, precision_);
}

void RoutedConv2dImpl::set_precision(skills::ConvPrecision precision) {
  precision_ = precision;
  if (!skill_.is_empty()) skill_->options.precision(precision);
}

std::pair<at::Tensor, at::Tensor> RoutedConv2dImpl::BatchKernels(const skills::TaskBatch& batch) {
  if (!skill_.is_empty()) return skill_->BatchKernels(batch);
  return {plain_->weight.unsqueeze(0), plain_->bias.defined() ? plain_->bias.unsqueeze(0) : at::Tensor()};
}

// ----------------------------------------------------------------------------------------------
LstmCellImpl::LstmCellImpl(const RoutingOptions& routing, LayerFamily family, int64_t input_size,
                           int64_t hidden_size)
    : routing_(routing), family_(family), input_(input_size), hidden_(hidden_size) {
  reset();
}

void LstmCellImpl::reset() {
  ih_ = register_module("ih", RoutedLinear(routing_, family_, input_, 4 * hidden_));
  hh_ = register_module("hh", RoutedLinear(routing_, family_, hidden_, 4 * hidden_));
  InitRecurrent(*ih_, hidden_);
  InitRecurrent(*hh_, hidden_);
}

at::Tensor LstmCellImpl::InputGates(const at::Tensor& x, const skills::TaskBatch& batch) {
  return ih_->forward(x, batch);
}

at::Tensor LstmCellImpl::forward(const at::Tensor& x, const at::Tensor& state, const skills::TaskBatch& batch,
                                 const at::Tensor& x_gates) {
  return Step(x_gates.defined() ? x_gates : ih_->forward(x, batch), state, hh_->Prepare(batch));
}

PreparedLinear LstmCellImpl::PrepareRecurrent(const skills::TaskBatch& batch) { return hh_->Prepare(batch); }

at::Tensor LstmCellImpl::Step(const at::Tensor& x_gates, const at::Tensor& state, const PreparedLinear& hh) const {
  const at::Tensor h = state.narrow(1, 0, hidden_);
  const at::Tensor c = state.narrow(1, hidden_, hidden_);
  return LstmPointwise(x_gates + hh.Apply(h), c);
}

at::Tensor LstmCellImpl::Unroll(const at::Tensor& gates, const at::Tensor& state, const at::Tensor& resets,
                                const PreparedLinear& hh) const {
  RecurrentMap map;
  if (hh.ToRecurrentMap(&map)) return LstmSequence(gates, state, resets, map);
  // No matmul form (e.g. several routing heads): step with the prepared layer.
  return LstmSteps(gates, state, resets, [&](const at::Tensor& h) { return hh.Apply(h); });
}

// ----------------------------------------------------------------------------------------------
InstructionEncoderImpl::InstructionEncoderImpl(const RoutingOptions& routing, int64_t vocab_size, int64_t word_dim,
                                               int64_t hidden)
    : routing_(routing), vocab_(vocab_size), word_dim_(word_dim), hidden_(hidden) {
  reset();
}

void InstructionEncoderImpl::reset() {
  embedding_ = register_module("embedding", torch::nn::Embedding(vocab_, word_dim_));
  ih_ = register_module("ih", RoutedLinear(routing_, LayerFamily::kText, word_dim_, 3 * hidden_));
  hh_ = register_module("hh", RoutedLinear(routing_, LayerFamily::kText, hidden_, 3 * hidden_));
  InitRecurrent(*ih_, hidden_);
  InitRecurrent(*hh_, hidden_);
}

bool InstructionEncoderImpl::HostForwardApplies(const at::Tensor& tokens) {
  return !at::GradMode::is_enabled() && tokens.device().is_cpu() && IsCpuFloat(embedding_->weight) &&
         HostLinear::Supports(*ih_) && HostLinear::Supports(*hh_);
}

at::Tensor InstructionEncoderImpl::ForwardHost(const at::Tensor& tokens_in, const at::Tensor& lengths_in,
                                               const skills::TaskBatch& batch) {
  const at::Tensor tokens = tokens_in.to(at::kLong).contiguous(), lengths = lengths_in.to(at::kLong).contiguous();
  TORCH_CHECK(tokens.dim() == 2 && lengths.dim() == 1 && lengths.size(0) == tokens.size(0),
              "InstructionEncoder: tokens ", tokens.sizes(), " and lengths ", lengths.sizes(),
              " must be (U, L) and (U)");
  const int64_t u = tokens.size(0), steps = tokens.size(1), h = hidden_, w = word_dim_;
  const at::Tensor table = embedding_->weight.contiguous();
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  at::Tensor words = at::empty({u * steps, w}, opts);
  {
    const int64_t* tok = tokens.data_ptr<int64_t>();
    const float* tab = table.data_ptr<float>();
    float* out = words.data_ptr<float>();
    for (int64_t i = 0; i < u * steps; ++i) {
      TORCH_CHECK(tok[i] >= 0 && tok[i] < vocab_, "InstructionEncoder: token id ", tok[i], " is outside the vocabulary of ",
                  vocab_);
      std::copy(tab + tok[i] * w, tab + (tok[i] + 1) * w, out + i * w);
    }
  }
  // Routing draws in forward()'s order: input gates, then the hidden map.
  const HostLinear ih(*ih_, batch);
  const HostLinear hh(*hh_, batch);
  at::Tensor gi = at::empty({u * steps, 3 * h}, opts);
  ih.Apply(words.data_ptr<float>(), w, u * steps, gi.data_ptr<float>(), 3 * h, false, steps);
  at::Tensor state = at::zeros({u, h}, opts);
  at::Tensor gh = at::empty({u, 3 * h}, opts);
  std::vector<float> acts(static_cast<size_t>(3 * h));
  const int64_t* len = lengths.data_ptr<int64_t>();
  const float* gi_rows = gi.data_ptr<float>();
  float* gh_rows = gh.data_ptr<float>();
  float* s = state.data_ptr<float>();
  for (int64_t t = 0; t < steps; ++t) {
    hh.Apply(s, h, u, gh_rows, 3 * h, false);
    for (int64_t row = 0; row < u; ++row) {
      if (t >= len[row]) continue;  // the sequence ended: its state stays
      GruActivateRow(gi_rows + (row * steps + t) * 3 * h, gh_rows + row * 3 * h, s + row * h, 1.0f, h, acts.data(),
                     s + row * h);
    }
  }
  return state;
}

at::Tensor InstructionEncoderImpl::forward(const at::Tensor& tokens, const at::Tensor& lengths,
                                           const skills::TaskBatch& batch) {
  if (HostForwardApplies(tokens)) return ForwardHost(tokens, lengths, batch);
  const int64_t u = tokens.size(0);
  const int64_t steps = tokens.size(1);
  at::Tensor gi = ih_->forward(embedding_->forward(tokens), batch);  // (U, L, 3H)
  at::Tensor h = at::zeros({u, hidden_}, gi.options());
  const PreparedLinear hh = hh_->Prepare(batch);  // one routing draw for the whole sequence
  const at::Tensor valid_steps = (lengths.unsqueeze(0) > at::arange(steps, lengths.options()).unsqueeze(1))
                                     .to(h.scalar_type());  // (L, U)
  RecurrentMap map;
  if (hh.ToRecurrentMap(&map)) return GruSequence(gi, h, valid_steps, map);
  return GruSteps(gi, h, valid_steps, [&](const at::Tensor& x) { return hh.Apply(x); });
}

}  // namespace skillgrid::agents
