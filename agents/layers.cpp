#include "agents/layers.h"

#include <cmath>
#include <numeric>
#include <stdexcept>

#include <torch/autograd.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>

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
    throw std::invalid_argument("routing: density must be in (0, 1], got " + std::to_string(density()));
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
    const auto linear = MakeSkillLinearOptions(routing_, in_ * kernel_ * kernel_, out_, true);
    skill_ = register_module("skill", skills::SkillConv2d(skills::SkillConv2dOptions(in_, out_, kernel_)
                                                             .padding(padding_)
                                                             .routing(linear.routing())
                                                             .skills(linear.skills())));
    plain_ = nullptr;
  } else {
    plain_ = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_, out_, kernel_).padding(padding_)));
    skill_ = nullptr;
  }
}

at::Tensor RoutedConv2dImpl::forward(const at::Tensor& x, const skills::TaskBatch& batch) {
  return skill_.is_empty() ? plain_->forward(x) : skill_->forward(x, batch);
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

at::Tensor InstructionEncoderImpl::forward(const at::Tensor& tokens, const at::Tensor& lengths,
                                           const skills::TaskBatch& batch) {
  const int64_t u = tokens.size(0);
  const int64_t steps = tokens.size(1);
  at::Tensor gi = ih_->forward(embedding_->forward(tokens), batch);  // (U, L, 3H)
  at::Tensor h = at::zeros({u, hidden_}, gi.options());
  const PreparedLinear hh = hh_->Prepare(batch);  // one routing draw for the whole sequence
  // unbind, not select per step: select's backward writes a full-size zero tensor per step.
  const std::vector<at::Tensor> gi_steps = gi.unbind(1);
  const at::Tensor valid_steps = (lengths.unsqueeze(0) > at::arange(steps, lengths.options()).unsqueeze(1))
                                     .to(h.scalar_type());  // (L, U)
  for (int64_t t = 0; t < steps; ++t) {
    // Rows whose instruction already ended keep their last valid output.
    h = GruPointwise(gi_steps[static_cast<size_t>(t)], hh.Apply(h), h, valid_steps[t]);
  }
  return h;
}

// ----------------------------------------------------------------------------------------------
namespace {

// Recurrent steps are many tiny ops; on CPU the per-op cost dominates, so the gate math of a
// step is one loop forward and one loop backward.
bool FusableOnCpu(std::initializer_list<at::Tensor> tensors) {
  for (const auto& t : tensors) {
    if (!t.device().is_cpu() || (t.scalar_type() != at::kFloat && t.scalar_type() != at::kDouble)) return false;
  }
  return true;
}

template <typename T>
T Sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

struct LstmPointwiseFn : public torch::autograd::Function<LstmPointwiseFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& gates_in, const at::Tensor& c_in) {
    const at::Tensor gates = gates_in.contiguous(), c = c_in.contiguous();
    const int64_t n = c.size(0), hid = c.size(1);
    at::Tensor acts = at::empty_like(gates);         // i, f, g, o after their nonlinearity
    at::Tensor out = at::empty({n, 2 * hid}, c.options());  // h', c'
    AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "LstmPointwise", [&] {
      const scalar_t* g = gates.data_ptr<scalar_t>();
      const scalar_t* cp = c.data_ptr<scalar_t>();
      scalar_t* a = acts.data_ptr<scalar_t>();
      scalar_t* o = out.data_ptr<scalar_t>();
      for (int64_t r = 0; r < n; ++r) {
        const scalar_t* gr = g + r * 4 * hid;
        scalar_t* ar = a + r * 4 * hid;
        for (int64_t k = 0; k < hid; ++k) {
          const scalar_t i = Sigmoid(gr[k]), f = Sigmoid(gr[hid + k]), gg = std::tanh(gr[2 * hid + k]),
                         og = Sigmoid(gr[3 * hid + k]);
          ar[k] = i;
          ar[hid + k] = f;
          ar[2 * hid + k] = gg;
          ar[3 * hid + k] = og;
          const scalar_t c_new = f * cp[r * hid + k] + i * gg;
          o[r * 2 * hid + hid + k] = c_new;
          o[r * 2 * hid + k] = og * std::tanh(c_new);
        }
      }
    });
    ctx->save_for_backward({acts, c, out});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& acts = saved[0];
    const at::Tensor& c = saved[1];
    const at::Tensor& out = saved[2];
    const at::Tensor d_out = grads[0].contiguous();
    const int64_t n = c.size(0), hid = c.size(1);
    at::Tensor d_gates = at::empty_like(acts), d_c = at::empty_like(c);
    AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "LstmPointwiseBackward", [&] {
      const scalar_t* a = acts.data_ptr<scalar_t>();
      const scalar_t* cp = c.data_ptr<scalar_t>();
      const scalar_t* o = out.data_ptr<scalar_t>();
      const scalar_t* dout = d_out.data_ptr<scalar_t>();
      scalar_t* dg = d_gates.data_ptr<scalar_t>();
      scalar_t* dc = d_c.data_ptr<scalar_t>();
      for (int64_t r = 0; r < n; ++r) {
        const scalar_t* ar = a + r * 4 * hid;
        scalar_t* dgr = dg + r * 4 * hid;
        for (int64_t k = 0; k < hid; ++k) {
          const scalar_t i = ar[k], f = ar[hid + k], gg = ar[2 * hid + k], og = ar[3 * hid + k];
          const scalar_t tc = std::tanh(o[r * 2 * hid + hid + k]);
          const scalar_t dh = dout[r * 2 * hid + k];
          const scalar_t dcn = dout[r * 2 * hid + hid + k] + dh * og * (scalar_t(1) - tc * tc);
          dgr[k] = dcn * gg * i * (scalar_t(1) - i);
          dgr[hid + k] = dcn * cp[r * hid + k] * f * (scalar_t(1) - f);
          dgr[2 * hid + k] = dcn * i * (scalar_t(1) - gg * gg);
          dgr[3 * hid + k] = dh * tc * og * (scalar_t(1) - og);
          dc[r * hid + k] = dcn * f;
        }
      }
    });
    return {d_gates, d_c};
  }
};

struct GruPointwiseFn : public torch::autograd::Function<GruPointwiseFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& gi_in, const at::Tensor& gh_in,
                            const at::Tensor& h_in, const at::Tensor& valid_in) {
    const at::Tensor gi = gi_in.contiguous(), gh = gh_in.contiguous(), h = h_in.contiguous(),
                     valid = valid_in.contiguous();
    const int64_t n = h.size(0), hid = h.size(1);
    at::Tensor acts = at::empty({n, 3 * hid}, h.options());  // r, z, n
    at::Tensor out = at::empty_like(h);
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "GruPointwise", [&] {
      const scalar_t* i = gi.data_ptr<scalar_t>();
      const scalar_t* g = gh.data_ptr<scalar_t>();
      const scalar_t* hp = h.data_ptr<scalar_t>();
      const scalar_t* v = valid.data_ptr<scalar_t>();
      scalar_t* a = acts.data_ptr<scalar_t>();
      scalar_t* o = out.data_ptr<scalar_t>();
      for (int64_t row = 0; row < n; ++row) {
        const scalar_t* ir = i + row * 3 * hid;
        const scalar_t* gr = g + row * 3 * hid;
        scalar_t* ar = a + row * 3 * hid;
        for (int64_t k = 0; k < hid; ++k) {
          const scalar_t r = Sigmoid(ir[k] + gr[k]), z = Sigmoid(ir[hid + k] + gr[hid + k]);
          const scalar_t nn = std::tanh(ir[2 * hid + k] + r * gr[2 * hid + k]);
          ar[k] = r;
          ar[hid + k] = z;
          ar[2 * hid + k] = nn;
          const scalar_t h_old = hp[row * hid + k];
          const scalar_t h_new = nn + z * (h_old - nn);
          o[row * hid + k] = h_old + v[row] * (h_new - h_old);
        }
      }
    });
    ctx->save_for_backward({acts, gh, h, valid});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& acts = saved[0];
    const at::Tensor& gh = saved[1];
    const at::Tensor& h = saved[2];
    const at::Tensor& valid = saved[3];
    const at::Tensor d_out = grads[0].contiguous();
    const int64_t n = h.size(0), hid = h.size(1);
    at::Tensor d_gi = at::empty_like(acts), d_gh = at::empty_like(acts), d_h = at::empty_like(h);
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "GruPointwiseBackward", [&] {
      const scalar_t* a = acts.data_ptr<scalar_t>();
      const scalar_t* g = gh.data_ptr<scalar_t>();
      const scalar_t* hp = h.data_ptr<scalar_t>();
      const scalar_t* v = valid.data_ptr<scalar_t>();
      const scalar_t* dout = d_out.data_ptr<scalar_t>();
      scalar_t* dgi = d_gi.data_ptr<scalar_t>();
      scalar_t* dgh = d_gh.data_ptr<scalar_t>();
      scalar_t* dh = d_h.data_ptr<scalar_t>();
      for (int64_t row = 0; row < n; ++row) {
        const scalar_t* ar = a + row * 3 * hid;
        const scalar_t* gr = g + row * 3 * hid;
        for (int64_t k = 0; k < hid; ++k) {
          const scalar_t r = ar[k], z = ar[hid + k], nn = ar[2 * hid + k];
          const scalar_t h_old = hp[row * hid + k];
          const scalar_t d = dout[row * hid + k];
          const scalar_t d_hnew = v[row] * d;
          const scalar_t d_an = d_hnew * (scalar_t(1) - z) * (scalar_t(1) - nn * nn);
          const scalar_t d_ar = d_an * gr[2 * hid + k] * r * (scalar_t(1) - r);
          const scalar_t d_az = d_hnew * (h_old - nn) * z * (scalar_t(1) - z);
          const int64_t base = row * 3 * hid;
          dgi[base + k] = d_ar;
          dgi[base + hid + k] = d_az;
          dgi[base + 2 * hid + k] = d_an;
          dgh[base + k] = d_ar;
          dgh[base + hid + k] = d_az;
          dgh[base + 2 * hid + k] = d_an * r;
          dh[row * hid + k] = (scalar_t(1) - v[row]) * d + d_hnew * z;
        }
      }
    });
    return {d_gi, d_gh, d_h, at::Tensor()};
  }
};

}  // namespace

at::Tensor LstmPointwise(const at::Tensor& gates, const at::Tensor& c) {
  if (FusableOnCpu({gates, c}) && gates.scalar_type() == c.scalar_type()) return LstmPointwiseFn::apply(gates, c);
  auto g = gates.chunk(4, 1);
  const at::Tensor c_new = g[1].sigmoid() * c + g[0].sigmoid() * g[2].tanh();
  const at::Tensor h_new = g[3].sigmoid() * c_new.tanh();
  return at::cat({h_new, c_new}, 1);
}

at::Tensor GruPointwise(const at::Tensor& gi, const at::Tensor& gh, const at::Tensor& h, const at::Tensor& valid) {
  const at::Tensor v = valid.to(h.scalar_type());
  if (FusableOnCpu({gi, gh, h}) && gi.scalar_type() == h.scalar_type() && gh.scalar_type() == h.scalar_type()) {
    return GruPointwiseFn::apply(gi, gh, h, v.detach());
  }
  auto i = gi.chunk(3, 1);
  auto hc = gh.chunk(3, 1);
  const at::Tensor r = (i[0] + hc[0]).sigmoid();
  const at::Tensor z = (i[1] + hc[1]).sigmoid();
  const at::Tensor n = (i[2] + r * hc[2]).tanh();
  const at::Tensor h_new = n + z * (h - n);
  return h + v.unsqueeze(1) * (h_new - h);
}

}  // namespace skillgrid::agents
