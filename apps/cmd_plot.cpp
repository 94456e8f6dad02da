// `skillgrid plot`: writes a run directory's plots/ (learning curves from log.csv, evaluation
// curves from eval.csv, the routing heatmaps from skills.json) and prints the paths written; with
// --compare, one chart of several runs' mean success (e.g. Shared vs Poly), a table of their
// final per-level success and one of the episodes each level took to reach a success threshold.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "apps/commands.h"

#ifdef SKILLGRID_HAVE_VIZ
#include "envs/image_io.h"
#include "viz/plots.h"
#endif

namespace skillgrid::apps {
namespace {

struct PlotOptions {
  std::string run;                   // run directory
  std::vector<std::string> compare;  // run directories compared in one chart
  bool eval = false;                 // compare eval.csv instead of log.csv
  int last = 1;                      // rows averaged per value in the comparison table
  double threshold = 0.99;           // smoothed training success the sample-efficiency table waits for
  int window = 100;                  // log rows per centred moving average in that table
  double max_frames = 0;             // drop rows past this many frames (0 = keep all)
  std::string out = "compare.png";   // the comparison chart
  std::string x = "frames";          // x axis of the curves
  int width = 960;                   // chart size
  int height = 540;
};

#ifdef SKILLGRID_HAVE_VIZ
// The directories of one --compare entry under their label: "DIR" is labelled with the
// directory's name, "LABEL=DIR1+DIR2+..." (e.g. one method's seeds) with LABEL.
std::pair<std::string, std::vector<std::string>> ParseCompareEntry(const std::string& entry) {
  namespace fs = std::filesystem;
  const size_t eq = entry.find('=');
  if (eq == std::string::npos) {
    const fs::path name = fs::path(entry).lexically_normal();
    return {name.has_filename() ? name.filename().string() : name.parent_path().filename().string(), {entry}};
  }
  const std::string label = entry.substr(0, eq);
  std::vector<std::string> dirs;
  for (size_t start = eq + 1;;) {
    const size_t plus = entry.find('+', start);
    dirs.push_back(entry.substr(start, plus == std::string::npos ? std::string::npos : plus - start));
    if (plus == std::string::npos) break;
    start = plus + 1;
  }
  const bool empty_dir = std::any_of(dirs.begin(), dirs.end(), [](const std::string& d) { return d.empty(); });
  if (label.empty() || empty_dir) {
    throw std::runtime_error("--compare entry '" + entry + "' must be DIR or LABEL=DIR1+DIR2+...");
  }
  return {label, dirs};
}

// One chart of the runs' mean success (runs sharing a label averaged), and their final table.
int RunCompare(const PlotOptions& o) {
  namespace fs = std::filesystem;
  const std::string file = o.eval ? "eval.csv" : "log.csv";
  try {
    std::vector<std::pair<std::string, std::vector<std::string>>> entries;
    for (const auto& entry : o.compare) entries.push_back(ParseCompareEntry(entry));
    // Only LABEL= entries are averaged: a bare directory whose name another entry also uses
    // (runs1/poly, runs2/poly) is labelled with its whole path instead.
    std::vector<std::string> labels;
    for (const auto& e : entries) labels.push_back(e.first);
    for (size_t i = 0; i < entries.size(); ++i) {
      if (o.compare[i].find('=') == std::string::npos && std::count(labels.begin(), labels.end(), labels[i]) > 1) {
        entries[i].first = fs::path(entries[i].second.front()).lexically_normal().string();
      }
    }
    std::vector<viz::NamedTable> runs;
    for (const auto& [label, dirs] : entries) {
      for (const auto& dir : dirs) {
        const fs::path csv = fs::path(dir) / file;
        if (!fs::exists(csv)) throw std::runtime_error(dir + " has no " + file);
        viz::CsvTable table = viz::ReadCsvTable(csv.string());
        if (o.max_frames > 0) {
          table = viz::RowsUpToFrames(table, o.max_frames);
          if (table.rows() == 0) throw std::runtime_error(csv.string() + " has no row within --max-frames");
        }
        runs.push_back({label, std::move(table)});
      }
    }
    viz::CurveStyle style;
    style.width = o.width;
    style.height = o.height;
    style.title = o.eval ? "mean success over levels, argmax evaluation (eval.csv)"
                         : "mean success over levels, training episodes (log.csv)";
    style.y_label = "mean success";
    style.markers = o.eval;
    const fs::path parent = fs::path(o.out).parent_path();
    if (!parent.empty() && !fs::is_directory(parent)) throw std::runtime_error("no directory " + parent.string() + " for --out");
    std::vector<int> members;
    viz::FinalSuccessTable table = viz::AverageSameLabel(viz::FinalSuccess(runs, o.last), &members);
    for (size_t i = 0; i < table.runs.size(); ++i) {
      if (members[i] > 1) table.runs[i] += " (" + std::to_string(members[i]) + " runs)";
    }
    envs::WritePng(o.out, viz::RenderLearningCurves(viz::AverageSameLabel(viz::CompareCurves(runs, o.x)), style));
    std::cout << "wrote " << o.out << "\n";
    std::cout << (o.eval ? "argmax evaluation success" : "rolling training success") << ", mean of the last "
              << o.last << " row(s) of each " << file << (members.size() < runs.size() ? ", then over each label's runs" : "")
              << ":\n"
              << viz::FormatFinalSuccess(table);
    if (!o.eval) {  // eval.csv counts no training episodes
      viz::ReachOptions reach;
      reach.threshold = o.threshold;
      reach.window = o.window;
      viz::EpisodesToReachTable efficiency = viz::AverageSameLabel(viz::EpisodesToReach(runs, reach));
      for (size_t i = 0; i < efficiency.runs.size(); ++i) {  // headed as the final-success table
        if (efficiency.members[i] > 1) efficiency.runs[i] += " (" + std::to_string(efficiency.members[i]) + " runs)";
      }
      std::cout << "\ntraining episodes until the success, smoothed over " << o.window << " log rows (centred), reaches "
                << o.threshold << " (per level: its own episodes; all: every level's, when the mean success"
                << (members.size() < runs.size() ? " does; a label: the mean over its runs that reached, (k/n) if not all" : " does")
                << "):\n"
                << viz::FormatEpisodesToReach(efficiency);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "skillgrid plot: error: " << e.what() << "\n";
    return 2;
  }
}
#endif

int RunPlot(const PlotOptions& o) {
#ifdef SKILLGRID_HAVE_VIZ
  namespace fs = std::filesystem;
  if (o.run.empty() == o.compare.empty()) {
    std::cerr << "skillgrid plot: error: give either --run DIR or --compare DIR1,DIR2,...\n";
    return 2;
  }
  if (!o.compare.empty()) return RunCompare(o);
  if (!fs::exists(fs::path(o.run) / "log.csv")) {
    std::cerr << "skillgrid plot: error: " << o.run << " has no log.csv (not a training run directory?)\n";
    return 2;
  }
  try {
    viz::RunPlotOptions po;
    po.x_column = o.x;
    po.width = o.width;
    po.height = o.height;
    const viz::RunPlots plots = viz::WriteRunPlots(o.run, po);
    for (const auto& p : plots.written()) std::cout << "wrote " << p << "\n";
    for (const auto& e : plots.errors) std::cerr << "skillgrid plot: error: " << e << "\n";
    return plots.errors.empty() ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << "skillgrid plot: error: " << e.what() << "\n";
    return 2;
  }
#else
  (void)o;
  std::cerr << "skillgrid plot: error: this build has no viz/ (Eigen 3 was not found at build time)\n";
  return 2;
#endif
}

}  // namespace

void AddPlotCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<PlotOptions>();
  CLI::App* cmd = app.add_subcommand(
      "plot",
      "Write a run's plots/ (learning curves, evaluation curves, routing heatmaps; PNG), or with --compare one "
      "chart of several runs' mean success and tables of their final success per level and of the training "
      "episodes each level took to reach a success threshold (sample efficiency, as BabyAI measures it)");
  cmd->add_option("--run", o->run, "run directory (log.csv, eval.csv, skills.json): writes its plots/");
  cmd->add_option("--compare", o->compare,
                  "runs (comma-separated) drawn as one chart of mean success, e.g. Shared vs Poly; an entry "
                  "LABEL=DIR1+DIR2+... averages several runs (seeds) into one curve and table column")
      ->delimiter(',');
  cmd->add_flag("--eval", o->eval, "with --compare: evaluation success (eval.csv) instead of training (log.csv)");
  cmd->add_option("--out", o->out, "with --compare: the PNG to write")->capture_default_str();
  cmd->add_option("--last", o->last,
                  "with --compare: the table averages each run's last N rows (e.g. 3 periodic evaluations)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threshold", o->threshold,
                  "with --compare on log.csv: the sample-efficiency table counts episodes until the smoothed "
                  "success reaches this (BabyAI, Polytropon: 0.99)")
      ->capture_default_str()
      ->check(CLI::Range(1e-9, 1.0));
  cmd->add_option("--window", o->window,
                  "with --compare on log.csv: log rows per centred moving average of that table (BabyAI: 100; 10 "
                  "for GoToRedBallGrey)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-frames", o->max_frames,
                  "with --compare: only rows up to this many frames, to compare runs at one frame budget (0 = all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--x", o->x, "x axis of the curves")
      ->check(CLI::IsMember({"frames", "episodes"}))
      ->capture_default_str();
  cmd->add_option("--width", o->width, "chart width in pixels")->capture_default_str()->check(CLI::Range(320, 8192));
  cmd->add_option("--height", o->height, "chart height in pixels")->capture_default_str()->check(CLI::Range(200, 8192));
  cmd->callback([o, exit_code] { *exit_code = RunPlot(*o); });
}

}  // namespace skillgrid::apps
