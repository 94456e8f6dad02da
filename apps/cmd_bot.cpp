// `skillgrid bot`: runs the expert bot on seeded episodes of a level (or of every level), prints
// its success rate and mean episode length, and optionally saves the episodes as conformance
// traces that `skillgrid replay` replays.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "envs/bot.h"
#include "envs/level.h"
#include "envs/rng.h"

namespace skillgrid::apps {
namespace {

struct BotOptions {
  std::string level;       // level id, short name, or "all"
  int episodes = 100;      // episodes per level
  uint64_t seed = 0;       // first seed; episode k uses seed + k
  std::string out;         // .jsonl file for the episodes ("" = none)
  double p_random = 0.0;   // probability of a random action instead of the bot's
  double min_success = 0;  // exit status 1 if a level's success rate is below this
};

// The stream of random actions (separate from the level's generation stream).
constexpr uint64_t kActionStream = 0xb07;

// Accepts a registered id, or a short name ("GoToLocal" for "BabyAI-GoToLocal-v0").
std::string ResolveLevelId(const std::string& name) {
  for (const envs::LevelInfo& info : envs::AllLevels()) {
    if (info.id == name) return name;
  }
  for (const char* suffix : {"-v0", "-v1"}) {
    const std::string id = "BabyAI-" + name + suffix;
    for (const envs::LevelInfo& info : envs::AllLevels()) {
      if (info.id == id) return id;
    }
  }
  return name;  // unknown: the level factory reports it with the closest ids
}

// Per-level totals.
struct LevelStats {
  std::string level;
  int episodes = 0;
  int successes = 0;
  long long steps = 0;
  std::map<std::string, int> failures;  // reason -> count

  double SuccessRate() const {
    return episodes > 0 ? static_cast<double>(successes) / episodes : 0;
  }
  double MeanSteps() const { return episodes > 0 ? static_cast<double>(steps) / episodes : 0; }
  std::string FailureList() const {
    std::string s;
    for (const auto& [reason, count] : failures) {
      if (!s.empty()) s += ",";
      s += reason + "=" + std::to_string(count);
    }
    return s.empty() ? "-" : s;
  }
};

// Why an unsuccessful episode failed.
std::string FailureReason(const envs::BotEpisodeResult& r) {
  if (r.bot_status != envs::BotStatus::kOk) return std::string(envs::BotStatusName(r.bot_status));
  if (r.truncated) return "truncated";
  if (r.terminated) return "instruction_failed";
  return "stopped";
}

// Runs the episodes of one level; appends their trace lines to *out if it is open.
LevelStats RunLevel(const std::string& id, const BotOptions& opt, std::ofstream* out) {
  LevelStats stats;
  stats.level = id;
  envs::BabyAIEnv env(id);
  envs::Bot bot;
  nlohmann::json trace;
  for (int k = 0; k < opt.episodes; ++k) {
    const uint64_t seed = opt.seed + static_cast<uint64_t>(k);
    env.Reset(seed);
    envs::Episode episode = env.episode();
    envs::Rng rng(seed, kActionStream);
    nlohmann::json* trace_ptr = nullptr;
    if (out->is_open()) {
      trace = nlohmann::json::object();
      trace["level"] = id;
      trace["seed"] = seed;
      trace["p_random"] = opt.p_random;
      trace_ptr = &trace;
    }
    const envs::BotEpisodeResult r =
        envs::RunBotEpisode(episode, bot, opt.p_random, rng, trace_ptr);
    ++stats.episodes;
    stats.steps += r.steps;
    if (r.success) {
      ++stats.successes;
    } else {
      ++stats.failures[FailureReason(r)];
    }
    if (trace_ptr != nullptr) *out << trace.dump() << '\n';
  }
  return stats;
}

int RunBot(const BotOptions& opt) {
  std::vector<std::string> ids;
  if (opt.level == "all") {
    for (const envs::LevelInfo& info : envs::AllLevels()) ids.push_back(info.id);
  } else {
    ids.push_back(ResolveLevelId(opt.level));
  }

  std::ofstream out;
  const std::string tmp = opt.out + ".tmp";
  if (!opt.out.empty()) {
    out.open(tmp, std::ios::out | std::ios::trunc);
    if (!out) {
      std::cerr << "skillgrid bot: error: cannot write '" << tmp << "'\n";
      return 2;
    }
  }

  const auto start = std::chrono::steady_clock::now();
  std::vector<LevelStats> all;
  for (const std::string& id : ids) {
    try {
      all.push_back(RunLevel(id, opt, &out));
    } catch (const std::exception& e) {
      std::cerr << "skillgrid bot: error: " << e.what() << "\n";
      if (out.is_open()) {
        out.close();
        std::remove(tmp.c_str());
      }
      return 2;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (out.is_open()) {
    out.close();
    if (!out || std::rename(tmp.c_str(), opt.out.c_str()) != 0) {
      std::cerr << "skillgrid bot: error: cannot write '" << opt.out << "'\n";
      std::remove(tmp.c_str());
      return 2;
    }
  }

  long long episodes = 0;
  bool below = false;
  for (const LevelStats& s : all) {
    episodes += s.episodes;
    if (s.SuccessRate() < opt.min_success) below = true;
  }
  std::cout << std::fixed;
  if (all.size() == 1) {
    const LevelStats& s = all.front();
    std::cout << "level: " << s.level << "\n"
              << "episodes: " << s.episodes << "\n"
              << "success_rate: " << std::setprecision(4) << s.SuccessRate() << "\n"
              << "mean_steps: " << std::setprecision(2) << s.MeanSteps() << "\n"
              << "failures: " << s.FailureList() << "\n";
  } else {
    size_t width = 5;
    for (const LevelStats& s : all) width = std::max(width, s.level.size());
    std::cout << std::left << std::setw(static_cast<int>(width)) << "level"
              << "  success_rate  mean_steps  failures\n";
    int perfect = 0;
    for (const LevelStats& s : all) {
      if (s.successes == s.episodes) ++perfect;
      std::cout << std::left << std::setw(static_cast<int>(width)) << s.level << "  " << std::right
                << std::setw(12) << std::setprecision(4) << s.SuccessRate() << "  " << std::setw(10)
                << std::setprecision(2) << s.MeanSteps() << "  " << s.FailureList() << "\n";
    }
    std::cout << "levels: " << all.size() << ", all episodes solved on " << perfect << "\n";
  }
  std::cout << "episodes_per_second: " << std::setprecision(0)
            << (seconds > 0 ? static_cast<double>(episodes) / seconds : 0.0) << "\n";
  if (!opt.out.empty()) std::cout << "saved: " << opt.out << "\n";
  return below ? 1 : 0;
}

}  // namespace

void AddBotCommand(CLI::App& app, int* exit_code) {
  auto opt = std::make_shared<BotOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bot",
      "Run the expert BabyAI bot on seeded episodes (seeds S, S+1, ...) and print "
      "success_rate (episodes with a positive reward), mean_steps (over all episodes) and "
      "failures by reason; with --level all, a table of every level. --out saves the episodes "
      "as conformance traces for `skillgrid replay --traces`.");
  cmd->add_option("--level", opt->level,
                  "level id (BabyAI-GoToLocal-v0), short name (GoToLocal), or 'all'")
      ->required();
  cmd->add_option("--episodes", opt->episodes, "episodes per level")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", opt->seed, "seed of the first episode")->capture_default_str();
  cmd->add_option("--out", opt->out, "save the episodes to this .jsonl file (trace format)");
  cmd->add_option("--p-random", opt->p_random,
                  "probability that a step takes a uniformly random action instead of the bot's")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--min-success", opt->min_success,
                  "exit with status 1 if some level's success rate is below this")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->callback([opt, exit_code] { *exit_code = RunBot(*opt); });
}

}  // namespace skillgrid::apps
