#include "training/phase_profile.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <memory>
#include <utility>
#include <vector>

#include <ATen/record_function.h>
#include <c10/util/Exception.h>
#include <torch/cuda.h>

namespace skillgrid::training {

namespace {

std::atomic<PhaseProfile*> g_active{nullptr};

std::unique_ptr<at::ObserverContext> OnOperatorStart(const at::RecordFunction& fn) {
  PhaseProfile* profile = g_active.load(std::memory_order_acquire);
  if (profile != nullptr) profile->CountOperator(fn.name());
  return nullptr;
}

}  // namespace

PhaseProfile::PhaseProfile(c10::Device device) : device_(device) {
  PhaseProfile* expected = nullptr;
  TORCH_CHECK(g_active.compare_exchange_strong(expected, this), "PhaseProfile: another profile is already recording");
  // Operators only (not user scopes or backward nodes, which would count the same work twice).
  callback_ = at::addGlobalCallback(at::RecordFunctionCallback(&OnOperatorStart).scopes({at::RecordScope::FUNCTION}));
}

PhaseProfile::~PhaseProfile() {
  at::removeCallback(callback_);
  g_active.store(nullptr, std::memory_order_release);
}

void PhaseProfile::Synchronize() const {
  if (device_.is_cuda()) torch::cuda::synchronize(device_.index());
}

void PhaseProfile::CountOperator(const char* name) {
  std::lock_guard<std::mutex> lock(mutex_);
  Totals& t = phases_[open_.empty() ? "(between phases)" : open_];
  ++t.ops;
  ++t.ops_by_name[name == nullptr ? "?" : name];
}

PhaseProfile::Scope::Scope(PhaseProfile* profile, const char* phase) : profile_(profile) {
  if (profile_ == nullptr) return;
  profile_->Synchronize();  // the work queued before belongs to the phase before
  {
    std::lock_guard<std::mutex> lock(profile_->mutex_);
    TORCH_CHECK(profile_->open_.empty(), "PhaseProfile: phase ", phase, " opened inside ", profile_->open_);
    profile_->open_ = phase;
  }
  start_ = std::chrono::steady_clock::now();
}

PhaseProfile::Scope::~Scope() {
  if (profile_ == nullptr) return;
  try {
    profile_->Synchronize();
  } catch (const std::exception&) {
    // A failing device fails the caller's next operation too; a destructor must not throw.
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::lock_guard<std::mutex> lock(profile_->mutex_);
  profile_->phases_[profile_->open_].seconds += seconds;
  profile_->open_.clear();
}

void PhaseProfile::Reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  phases_.clear();
}

std::string PhaseProfile::Report(int64_t updates, int top) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const double per = 1.0 / static_cast<double>(std::max<int64_t>(updates, 1));
  double total = 0.0;
  for (const auto& [name, t] : phases_) total += t.seconds;
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "phase                 s/update   share   ops/update   us/op\n");
  out += line;
  for (const auto& [name, t] : phases_) {
    const double us_per_op = t.ops > 0 ? 1e6 * t.seconds / static_cast<double>(t.ops) : 0.0;
    std::snprintf(line, sizeof line, "%-20s %9.4f %7.3f %12.0f %7.1f\n", name.c_str(), t.seconds * per,
                  total > 0 ? t.seconds / total : 0.0, static_cast<double>(t.ops) * per, us_per_op);
    out += line;
  }
  for (const auto& [name, t] : phases_) {
    std::vector<std::pair<int64_t, std::string>> ranked;
    for (const auto& [op, count] : t.ops_by_name) ranked.emplace_back(count, op);
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    out += "top operators of " + name + " per update:";
    for (int i = 0; i < top && i < static_cast<int>(ranked.size()); ++i) {
      std::snprintf(line, sizeof line, " %s %.4g%s", ranked[static_cast<size_t>(i)].second.c_str(),
                    static_cast<double>(ranked[static_cast<size_t>(i)].first) * per,
                    i + 1 < top && i + 1 < static_cast<int>(ranked.size()) ? "," : "");
      out += line;
    }
    out += "\n";
  }
  return out;
}

}  // namespace skillgrid::training
