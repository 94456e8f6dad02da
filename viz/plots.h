// Headless plots of a training run: a small numeric CSV reader for log.csv / eval.csv, a line
// chart of per-level success (learning curves), and WriteRunPlots, which writes a run's
// plots/*.png (learning curves, eval curves, the stacked routing heatmaps). No display needed.
#pragma once

#include <string>
#include <vector>

#include "envs/image_io.h"
#include "viz/canvas.h"
#include "viz/routing.h"

namespace skillgrid::viz {

/// A numeric CSV table: the header's column names and one column of doubles per name.
struct CsvTable {
  std::string source;                        ///< file (or label) named in error messages
  std::vector<std::string> names;            ///< column names in header order
  std::vector<std::vector<double>> columns;  ///< columns[c][row]; empty fields are NaN
  int skipped_rows = 0;                      ///< rows dropped: wrong field count or unfinished last line

  /// Number of data rows.
  int rows() const { return columns.empty() ? 0 : static_cast<int>(columns[0].size()); }
  /// Index of column `name`, or -1.
  int Find(const std::string& name) const;
};

/// Parses CSV text: a header of unique column names, then rows of numbers ("" = NaN). Rows with
/// a wrong field count are skipped (counted in skipped_rows), as is an unparsable last line with
/// no newline (a row being written). Throws std::runtime_error naming `source` on a missing or
/// malformed header, or a field that is not a number.
CsvTable ParseCsvTable(const std::string& text, const std::string& source);

/// Reads and parses a CSV file (see ParseCsvTable); throws std::runtime_error naming the file
/// when it cannot be read.
CsvTable ReadCsvTable(const std::string& path);

/// The rows of `table` whose "frames" is at most `max_frames` (runs compared at one frame budget);
/// throws std::runtime_error naming the table's source when it has no frames column.
CsvTable RowsUpToFrames(const CsvTable& table, double max_frames);

/// Colours of the learning-curve charts (light background, so the mean can be black).
namespace chart {
inline constexpr Rgb kBackground{255, 255, 255};  ///< image background
inline constexpr Rgb kGrid{228, 228, 232};        ///< grid lines at the ticks
inline constexpr Rgb kAxis{70, 70, 76};           ///< axis lines and tick marks
inline constexpr Rgb kText{30, 30, 34};           ///< title, labels, legend text
inline constexpr Rgb kMean{0, 0, 0};              ///< the mean-success curve
}  // namespace chart

/// Colour of curve `i`: Tableau's 10 colours, then further distinct hues; never a chart colour.
Rgb CurveColor(int i);

/// One curve: a label and one y value per x (NaN = no point there).
struct CurveSeries {
  std::string label;      ///< legend text, e.g. the short level name "GoToObj"
  std::vector<double> y;  ///< values, one per entry of LearningCurves::x
};

/// What a learning-curve chart shows.
struct LearningCurves {
  std::string x_label = "frames";  ///< axis label of x
  std::vector<double> x;            ///< x of each row (frames or episodes), non-decreasing
  std::vector<CurveSeries> levels;  ///< success per level, drawn in CurveColor(i)
  std::vector<double> mean;         ///< mean success per row, drawn thick in black; empty = none
};

/// Builds curves from a log.csv / eval.csv table: x from `x_column`, a series per
/// "<prefix><Short>" column (label <Short>; "<Short> (held out)" after an eval.csv's
/// mean_unseen_success column, train --eval-unseen's levels), the mean from `mean_column` if present.
/// Throws std::runtime_error naming table.source when x_column or every prefixed column is missing.
LearningCurves CurvesFromTable(const CsvTable& table, const std::string& x_column = "frames",
                               const std::string& prefix = "success_", const std::string& mean_column = "mean_success");

/// One run of a comparison: its legend label and its log.csv or eval.csv table.
struct NamedTable {
  std::string name;  ///< legend label, e.g. the run directory's name
  CsvTable table;    ///< the run's log.csv or eval.csv
};

/// The mean success of several runs as one chart's curves, one series per run (label = name),
/// on the union of their x values: each run is interpolated linearly between its own points and
/// NaN outside them, so runs logged at different frames still draw continuous lines. No black
/// mean curve. Throws std::runtime_error naming the table that lacks x_column or mean_success.
LearningCurves CompareCurves(const std::vector<NamedTable>& runs, const std::string& x_column = "frames");

/// Averages the series that share a label (e.g. one method's seeds) into one series under that
/// label, in order of first appearance: at each x the mean of the members' values, NaN unless
/// every member has a value there. Series with a unique label are kept as they are.
LearningCurves AverageSameLabel(const LearningCurves& curves);

/// Several runs' final per-level success side by side (what `skillgrid plot --compare` prints).
struct FinalSuccessTable {
  std::vector<std::string> runs;             ///< run names, one column each
  std::vector<std::string> levels;           ///< short level names, first seen first, then "mean"
  std::vector<std::vector<double>> success;  ///< success[level][run]; NaN where the run lacks the level
  std::vector<double> frames;                ///< per run: frames at its last row; NaN without that column
};

/// Per run and level, the mean of the finite "success_<level>" values in the run's last
/// `last_rows` rows (NaN if none), and the same of "mean_success" as the "mean" row. Throws
/// std::runtime_error when last_rows < 1.
FinalSuccessTable FinalSuccess(const std::vector<NamedTable>& runs, int last_rows = 1);

/// The table as aligned text: a header of run names, a row per level (success to 3 decimals, "-"
/// for NaN), the mean row, then the frames row; ends with a newline.
std::string FormatFinalSuccess(const FinalSuccessTable& table);

/// Averages the table's runs that share a name into one column under that name, in order of first
/// appearance: per level the mean over the members with a value (NaN if none), frames the mean.
/// `members` receives each column's number of runs when not null.
FinalSuccessTable AverageSameLabel(const FinalSuccessTable& table, std::vector<int>* members = nullptr);

/// How EpisodesToReach measures sample efficiency (BabyAI's scripts/rl_dataeff.py).
struct ReachOptions {
  double threshold = 0.99;  ///< smoothed success to reach (>=); BabyAI and Polytropon use 0.99
  int window = 100;         ///< log rows per centred moving average (BabyAI: 100; 10 for GoToRedBallGrey)
};

/// Centred moving average, as pandas' rolling(window, center=True).mean(): value i is the mean of
/// rows [i - window/2, i - window/2 + window), NaN where that range leaves the data or holds a
/// NaN. Throws std::runtime_error when window < 1.
std::vector<double> CentredMovingAverage(const std::vector<double>& values, int window);

/// Per run and level, the training episodes spent until the smoothed success first reached the
/// threshold: a sample-efficiency table (`skillgrid plot --compare` prints it under the final one).
struct EpisodesToReachTable {
  std::vector<std::string> runs;    ///< column names
  std::vector<int> members;         ///< runs per column (1 until AverageSameLabel merges)
  std::vector<std::string> levels;  ///< short level names, first seen first, then "all"
  /// episodes[level][run]: at the first row whose smoothed success reaches the threshold, the
  /// level's own episodes so far ("episodes_<level>"); for "all", every level's ("episodes") when
  /// the smoothed "mean_success" does (Polytropon's metric). Merged columns: the mean over the
  /// runs that reached. NaN when none did.
  std::vector<std::vector<double>> episodes;
  std::vector<std::vector<int>> reached;  ///< reached[level][run]: how many of the column's runs reached
  std::vector<std::vector<double>> best;  ///< best[level][run]: highest smoothed success; NaN if no full window
};

/// Builds the table from log.csv tables (see EpisodesToReachTable). Throws std::runtime_error
/// when options.window < 1 or options.threshold is not in (0, 1].
EpisodesToReachTable EpisodesToReach(const std::vector<NamedTable>& runs, const ReachOptions& options = {});

/// Merges the columns that share a name (seeds of one method), in order of first appearance.
EpisodesToReachTable AverageSameLabel(const EpisodesToReachTable& table);

/// The table as aligned text: episodes with thousands separators, "(k/n)" when only k of a
/// column's n runs reached, "- (max 0.83)" when none did ("-" alone without a full window), "?"
/// when a log lacks the episodes column; ends with a newline.
std::string FormatEpisodesToReach(const EpisodesToReachTable& table);

/// How to draw a learning-curve chart.
struct CurveStyle {
  int width = 960;          ///< image width in pixels (>= 320)
  int height = 540;         ///< image height in pixels (>= 200)
  std::string title;        ///< line above the chart (its band is kept when empty); "" for none
  double y_min = 0.0;       ///< bottom of the y axis
  double y_max = 1.0;       ///< top of the y axis (> y_min)
  std::string y_label = "success";  ///< label above the y axis
  int line_px = 2;          ///< thickness of the level curves
  int mean_px = 3;          ///< thickness of the mean curve
  bool step = false;        ///< steps (hold each value until the next x) instead of straight segments
  bool markers = false;     ///< a square at every point (for sparse data such as evaluations)
};

/// Where a chart's parts landed, and the data-to-pixel mapping.
struct CurveLayout {
  Rect plot;          ///< the framed plot area (inside the axes); curves never leave it
  Rect data;          ///< the part of `plot` the axis ranges map onto (a few pixels inset)
  Rect legend;        ///< the legend box right of the plot
  double x_min = 0.0;  ///< x at data's left edge
  double x_max = 1.0;  ///< x at data's right edge
  double y_min = 0.0;  ///< y at data's bottom edge
  double y_max = 1.0;  ///< y at data's top edge

  /// Column of x (clamped to the data area).
  int XPixel(double x) const;
  /// Row of y (clamped to the data area).
  int YPixel(double y) const;
};

/// Draws the chart: grid and axes with tick labels, one polyline per level (NaN breaks the line;
/// a lone point is a dot), the mean on top, a legend of the labels, the title. Empty curves give
/// an empty frame with "no data yet".
envs::RgbImage RenderLearningCurves(const LearningCurves& curves, const CurveStyle& style,
                                    CurveLayout* layout = nullptr);

/// Stacks `matrices` (layers and heads of one snapshot taken at `frames`, -1 if unknown)
/// vertically as heatmaps titled with layer, head and frames; `skillgrid render --heatmap` draws this.
envs::RgbImage RenderRoutingStack(const std::vector<const RoutingMatrix*>& matrices, int64_t frames);
/// Every routing matrix of `snap` (each layer and head), stacked as above.
envs::RgbImage RenderRoutingStack(const RoutingSnapshot& snap);

/// Options of WriteRunPlots.
struct RunPlotOptions {
  std::string x_column = "frames";  ///< x axis of the curves: "frames" or "episodes"
  int width = 960;                  ///< chart width in pixels
  int height = 540;                 ///< chart height in pixels
};

/// The files WriteRunPlots wrote and the optional plots that failed.
struct RunPlots {
  std::string learning_curves;      ///< plots/learning_curves.png (always written on success)
  std::string eval_curves;          ///< plots/eval_curves.png; "" when eval.csv is absent or has no rows
  std::string skills_heatmap;       ///< plots/skills_heatmap.png; "" when skills.json is absent
  std::string distill_curves;       ///< plots/distill_curves.png (per-level KL); "" without kl_ columns
  std::vector<std::string> errors;  ///< one line per optional plot (eval, heatmap) that failed

  /// The paths written, in the order above.
  std::vector<std::string> written() const;
};

/// Writes run_dir/plots/: learning_curves.png from log.csv, eval_curves.png from eval.csv when
/// it has rows, skills_heatmap.png from the latest snapshot of skills.json when it exists,
/// distill_curves.png from log.csv's kl_<level> columns when the run distils teachers. Each
/// PNG is written atomically. Throws std::runtime_error (one line, naming the file) when log.csv
/// is missing or malformed; failures of the optional plots land in RunPlots::errors instead.
RunPlots WriteRunPlots(const std::string& run_dir, const RunPlotOptions& options = {});

}  // namespace skillgrid::viz
